"""Tensor Fusion Network fusion (outer product of the modalities)."""
from __future__ import annotations

from typing import ClassVar, FrozenSet, List, Optional, Sequence

import torch
from torch import Tensor, nn

from mmfusion.registry import MODELS
from mmfusion.structures import ModalityFeatures
from .base_fusion import VECTOR, BaseFusion, FusionOutput
from .channels_last import vector_inputs


@MODELS.register_module()
class TensorFusion(BaseFusion):
    """Tensor Fusion Network (Zadeh et al. 2017, "Tensor Fusion Network for
    Multimodal Sentiment Analysis", EMNLP).

    Each modality is projected to a small ``proj_dim`` (``Linear + ReLU``):
    ``z_i``, ``z_t``. A constant 1 is appended to each and the outer product
    ``[z_i; 1] (x) [z_t; 1]`` ``(B, proj_dim + 1, proj_dim + 1)`` is
    flattened row-major to ``(B, (proj_dim + 1) ** 2)``: it holds the
    bimodal products ``z_i z_t^T``, both unimodal vectors (the row and
    column against the 1s) and the constant 1. An MLP (``Linear + ReLU (+
    Dropout)`` per ``hidden_dims`` entry, then ``Linear + ReLU``) maps it to
    ``pooled`` ``(B, out_dim)``.

    Absent modality: its ``z`` is zeroed, so only its appended 1 remains
    and the tensor reduces to the present modality's unimodal terms (and
    the constant).

    Vector input only (``image.map`` must be None): the tensor per position
    of a map would be ``(proj_dim + 1) ** 2 * H * W`` values per sample.
    Only the text's pooled vector is used, so padding tokens never matter.

    Args:
        image_dim: image channels.
        text_dim: text channels.
        out_dim: output channels.
        proj_dim: per-modality projection size before the outer product.
        hidden_dims: hidden layer sizes of the post-fusion MLP.
        dropout: dropout on the flattened tensor and after each hidden
            layer (the tensor is large relative to the data: the paper
            regularises here).
        init_cfg: mmengine weight-initialisation config.
    """

    input_kinds: ClassVar[FrozenSet[str]] = frozenset({VECTOR})

    def __init__(self, image_dim: int, text_dim: int, out_dim: int = 256,
                 proj_dim: int = 32, hidden_dims: Sequence[int] = (256, ),
                 dropout: float = 0.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(image_dim, text_dim, init_cfg=init_cfg)
        self._out_dim = out_dim
        self.proj_dim = proj_dim
        self.image_proj = nn.Sequential(nn.Linear(image_dim, proj_dim),
                                        nn.ReLU(inplace=True))
        self.text_proj = nn.Sequential(nn.Linear(text_dim, proj_dim),
                                       nn.ReLU(inplace=True))
        layers: List[nn.Module] = [nn.Dropout(dropout)]
        c_in = (proj_dim + 1) ** 2
        for hidden in hidden_dims:
            layers += [nn.Linear(c_in, hidden), nn.ReLU(inplace=True),
                       nn.Dropout(dropout)]
            c_in = hidden
        layers += [nn.Linear(c_in, out_dim), nn.ReLU(inplace=True)]
        self.mlp = nn.Sequential(*layers)

    @property
    def out_dim(self) -> int:
        return self._out_dim

    @property
    def tensor_dim(self) -> int:
        """Size of the flattened fusion tensor, ``(proj_dim + 1) ** 2``."""
        return (self.proj_dim + 1) ** 2

    def fusion_tensor(self, image: ModalityFeatures,
                      text: ModalityFeatures) -> Tensor:
        """``(B, (proj_dim + 1) ** 2)``: the flattened ``[z_i; 1] (x)
        [z_t; 1]``; entry ``a * (proj_dim + 1) + c`` is ``z_i1[a] *
        z_t1[c]``."""
        x = vector_inputs(type(self).__name__, image, text)
        z_i = self.image_proj(x.image) * x.image_present
        z_t = self.text_proj(x.text) * x.text_present
        ones = z_i.new_ones(z_i.shape[0], 1)
        z_i = torch.cat((z_i, ones), -1)
        z_t = torch.cat((z_t, ones), -1)
        return torch.bmm(z_i.unsqueeze(2), z_t.unsqueeze(1)).flatten(1)

    def forward(self, image: ModalityFeatures, text: ModalityFeatures,
                return_attention: bool = False) -> FusionOutput:
        return FusionOutput(pooled=self.mlp(self.fusion_tensor(image, text)))
