"""Fusion by concatenation followed by an MLP."""
from __future__ import annotations

from typing import ClassVar, FrozenSet, List, Optional, Sequence

import torch
from torch import Tensor, nn

from mmfusion.registry import MODELS
from mmfusion.structures import ModalityFeatures
from .base_fusion import MAP, VECTOR, BaseFusion, FusionOutput


@MODELS.register_module()
class ConcatFusion(BaseFusion):
    """Concatenate image and text features and mix them with an MLP.

    - Vector input (``image.map`` is None): ``MLP([image pooled, text
      pooled])`` -> ``pooled`` ``(B, out_dim)``; ``map`` is None.
    - Map input: the text pooled vector is tiled over the ``H x W``
      positions and concatenated to the image channels; the same MLP is
      applied at every position (a stack of 1x1 convolutions, which share
      the vector path's weights) -> ``map`` ``(B, out_dim, H, W)``;
      ``pooled`` is its spatial mean.

    The MLP is ``Linear + ReLU (+ Dropout)`` per ``hidden_dims`` entry, then
    ``Linear`` to ``out_dim`` and a final ReLU (a single ``Linear + ReLU``
    when ``hidden_dims`` is empty). Only the text's pooled vector is used,
    so padding tokens never matter.

    Args:
        image_dim: image channels.
        text_dim: text channels.
        out_dim: output channels.
        hidden_dims: hidden layer sizes of the MLP.
        dropout: dropout after each hidden layer.
        init_cfg: mmengine weight-initialisation config.
    """

    input_kinds: ClassVar[FrozenSet[str]] = frozenset({VECTOR, MAP})

    def __init__(self, image_dim: int, text_dim: int, out_dim: int = 256,
                 hidden_dims: Sequence[int] = (), dropout: float = 0.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(image_dim, text_dim, init_cfg=init_cfg)
        self._out_dim = out_dim
        layers: List[nn.Module] = []
        c_in = image_dim + text_dim
        for hidden in hidden_dims:
            layers += [nn.Linear(c_in, hidden), nn.ReLU(inplace=True),
                       nn.Dropout(dropout)]
            c_in = hidden
        layers += [nn.Linear(c_in, out_dim), nn.ReLU(inplace=True)]
        self.mlp = nn.Sequential(*layers)

    @property
    def out_dim(self) -> int:
        return self._out_dim

    def forward(self, image: ModalityFeatures, text: ModalityFeatures,
                return_attention: bool = False) -> FusionOutput:
        text_vec = text.get_pooled()
        if image.map is None:
            fused = self.mlp(torch.cat((image.get_pooled(), text_vec), -1))
            return FusionOutput(pooled=fused)
        fmap: Tensor = image.map
        b, _, h, w = fmap.shape
        # Channels-last so the Linear layers act as 1x1 convolutions.
        tiled = text_vec[:, None, None, :].expand(b, h, w, -1)
        x = torch.cat((fmap.permute(0, 2, 3, 1), tiled), dim=-1)
        out_map = self.mlp(x).permute(0, 3, 1, 2)
        return FusionOutput(pooled=out_map.mean(dim=(2, 3)), map=out_map)
