"""Gated Multimodal Unit fusion."""
from __future__ import annotations

from typing import ClassVar, FrozenSet, Optional, Tuple

import torch
from torch import Tensor, nn

from mmfusion.registry import MODELS
from mmfusion.structures import ModalityFeatures
from .base_fusion import MAP, VECTOR, BaseFusion, FusionOutput
from .channels_last import ChannelsLast, channels_last, to_output


@MODELS.register_module()
class GatedFusion(BaseFusion):
    """Gated Multimodal Unit (Arevalo et al. 2017, "Gated Multimodal Units
    for Information Fusion", ICLR workshop).

    ``h_i = tanh(W_i x_i)``, ``h_t = tanh(W_t x_t)``,
    ``z = sigmoid(W_z [x_i; x_t])``, ``h = z * h_i + (1 - z) * h_t``: a
    per-sample, per-channel gate ``z`` in (0, 1) chooses how much of each
    modality every output channel carries. ``W_z [x_i; x_t]`` is computed as
    ``W_zi x_i + W_zt x_t`` (the same product, without tiling the text over
    a map).

    With ``hidden_dim`` None the GMU works at ``out_dim`` and ``h`` (values
    in (-1, 1)) is the output; otherwise it works at ``hidden_dim`` and
    ``Linear + ReLU`` maps ``h`` to ``out_dim``.

    Absent modality: the gate is set to take everything from the present
    one (``z = 1`` without text, ``z = 0`` without image); a sample with
    neither gets ``h = 0``.

    - Vector input: image ``(B, image_dim)``, text pooled ``(B, text_dim)``
      -> ``pooled`` ``(B, out_dim)``; ``map`` None.
    - Map input ``(B, image_dim, H, W)``: the same at every position, text
      broadcast -> ``map`` ``(B, out_dim, H, W)``, ``pooled`` its spatial
      mean. The gate then varies over positions too.

    Only the text's pooled vector is used, so padding tokens never matter.

    Args:
        image_dim: image channels.
        text_dim: text channels.
        out_dim: output channels.
        hidden_dim: GMU width when an output layer follows; None: no output
            layer, the GMU is ``out_dim`` wide.
        dropout: dropout on ``h`` before the output layer (only with
            ``hidden_dim``).
        init_cfg: mmengine weight-initialisation config.
    """

    input_kinds: ClassVar[FrozenSet[str]] = frozenset({VECTOR, MAP})

    def __init__(self, image_dim: int, text_dim: int, out_dim: int = 256,
                 hidden_dim: Optional[int] = None, dropout: float = 0.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(image_dim, text_dim, init_cfg=init_cfg)
        self._out_dim = out_dim
        gmu_dim = out_dim if hidden_dim is None else hidden_dim
        self.image_proj = nn.Linear(image_dim, gmu_dim)
        self.text_proj = nn.Linear(text_dim, gmu_dim)
        # W_z split by input: one bias is enough.
        self.gate_image = nn.Linear(image_dim, gmu_dim)
        self.gate_text = nn.Linear(text_dim, gmu_dim, bias=False)
        if hidden_dim is None:
            self.output: nn.Module = nn.Identity()
        else:
            self.output = nn.Sequential(nn.Dropout(dropout),
                                        nn.Linear(hidden_dim, out_dim),
                                        nn.ReLU(inplace=True))

    @property
    def out_dim(self) -> int:
        return self._out_dim

    def _gmu(self, x: ChannelsLast) -> Tuple[Tensor, Tensor]:
        """``(h, z)``, both ``(B, [H, W,] gmu_dim)`` channels-last."""
        h_i = torch.tanh(self.image_proj(x.image))
        h_t = torch.tanh(self.text_proj(x.text))
        z = torch.sigmoid(self.gate_image(x.image) + self.gate_text(x.text))
        p_i, p_t = x.image_present, x.text_present
        # Both present: the learned gate; text only: 0; image only: 1;
        # neither: 0 (and h is zeroed below). Arithmetic, not torch.where,
        # so the gradient paths stay the same for every sample.
        z = p_i * p_t * z + p_i * (1 - p_t)
        h = (z * h_i + (1 - z) * h_t) * torch.maximum(p_i, p_t)
        return h, z

    def gate(self, image: ModalityFeatures,
             text: ModalityFeatures) -> Tensor:
        """The gate ``z`` (weight of the image): ``(B, gmu_dim)`` for vector
        input, ``(B, gmu_dim, H, W)`` for a map."""
        x = channels_last(image, text)
        z = self._gmu(x)[1]
        return z.permute(0, 3, 1, 2) if x.is_map else z

    def forward(self, image: ModalityFeatures, text: ModalityFeatures,
                return_attention: bool = False) -> FusionOutput:
        x = channels_last(image, text)
        h = self._gmu(x)[0]
        return to_output(self.output(h), x.is_map)
