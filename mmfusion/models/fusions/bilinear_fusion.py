"""Low-rank bilinear pooling (MLB) fusion."""
from __future__ import annotations

from typing import ClassVar, FrozenSet, Optional

import torch
from torch import nn

from mmfusion.registry import MODELS
from mmfusion.structures import ModalityFeatures
from .base_fusion import MAP, VECTOR, BaseFusion, FusionOutput
from .channels_last import channels_last, to_output


@MODELS.register_module()
class BilinearFusion(BaseFusion):
    """Multimodal low-rank bilinear pooling (Kim et al. 2017, "Hadamard
    Product for Low-rank Bilinear Pooling", ICLR).

    ``ReLU(P (tanh(U x_i) * tanh(V x_t)) + b)``: the Hadamard product in a
    ``rank``-dim space is a rank-``rank`` factorisation of a full bilinear
    form ``x_i^T W_k x_t`` per output channel, so every output can depend on
    products of image and text features (multiplicative interaction) at
    the cost of two projections.

    Absent modality: its ``tanh`` factor is replaced by 1 (the identity of
    the product), so the present modality passes through alone; a sample
    with neither gets a zero product (output ``ReLU(b)``).

    - Vector input: image ``(B, image_dim)``, text pooled ``(B, text_dim)``
      -> ``pooled`` ``(B, out_dim)``; ``map`` None.
    - Map input ``(B, image_dim, H, W)``: the same at every position, text
      broadcast -> ``map`` ``(B, out_dim, H, W)``, ``pooled`` its spatial
      mean.

    Only the text's pooled vector is used, so padding tokens never matter.

    Args:
        image_dim: image channels.
        text_dim: text channels.
        out_dim: output channels.
        rank: width of the Hadamard product (the factorisation's rank).
        dropout: dropout on the product before ``P``.
        init_cfg: mmengine weight-initialisation config.
    """

    input_kinds: ClassVar[FrozenSet[str]] = frozenset({VECTOR, MAP})

    def __init__(self, image_dim: int, text_dim: int, out_dim: int = 256,
                 rank: int = 256, dropout: float = 0.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(image_dim, text_dim, init_cfg=init_cfg)
        self._out_dim = out_dim
        self.rank = rank
        self.image_proj = nn.Linear(image_dim, rank)
        self.text_proj = nn.Linear(text_dim, rank)
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(rank, out_dim)

    @property
    def out_dim(self) -> int:
        return self._out_dim

    def forward(self, image: ModalityFeatures, text: ModalityFeatures,
                return_attention: bool = False) -> FusionOutput:
        x = channels_last(image, text)
        p_i, p_t = x.image_present, x.text_present
        f_i = p_i * torch.tanh(self.image_proj(x.image)) + (1 - p_i)
        f_t = p_t * torch.tanh(self.text_proj(x.text)) + (1 - p_t)
        joint = f_i * f_t * torch.maximum(p_i, p_t)
        fused = torch.relu(self.out_proj(self.dropout(joint)))
        return to_output(fused, x.is_map)
