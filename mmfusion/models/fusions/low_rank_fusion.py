"""Low-rank Multimodal Fusion (a low-rank Tensor Fusion Network)."""
from __future__ import annotations

from typing import ClassVar, FrozenSet, Optional

import torch
from torch import nn

from mmfusion.registry import MODELS
from mmfusion.structures import ModalityFeatures
from .base_fusion import VECTOR, BaseFusion, FusionOutput
from .channels_last import vector_inputs


@MODELS.register_module()
class LowRankFusion(BaseFusion):
    """Low-rank Multimodal Fusion (Liu et al. 2018, "Efficient Low-rank
    Multimodal Fusion with Modality-Specific Factors", ACL).

    The :class:`TensorFusion` weight on ``[z_i; 1] (x) [z_t; 1]`` is
    factorised as a sum of ``rank`` products of per-modality factors
    ``W_m^(r)`` ``(d_m + 1, out_dim)``, so the outer product is never
    formed:

    ``h = sum_r w_r * ([z_i; 1] W_i^(r)) * ([z_t; 1] W_t^(r)) + b``

    with learned rank weights ``w`` ``(rank,)`` and bias ``b``
    ``(out_dim,)``; ``z_i`` ``(B, image_dim)`` is the image vector and
    ``z_t`` ``(B, text_dim)`` the text's pooled vector (the encoders are
    the paper's modality subnetworks). The output ``pooled`` ``(B,
    out_dim)`` is ``h`` itself, linear as in the paper (the head adds the
    non-linearity).

    Absent modality: its ``z`` is zeroed, leaving only its appended 1 (the
    factor's last row, a learned constant), as in the full tensor.

    Vector input only (``image.map`` must be None). Only the text's pooled
    vector is used, so padding tokens never matter.

    Args:
        image_dim: image channels.
        text_dim: text channels.
        out_dim: output channels.
        rank: number of factor products (the paper finds 4 or so enough).
        init_cfg: mmengine weight-initialisation config.
    """

    input_kinds: ClassVar[FrozenSet[str]] = frozenset({VECTOR})

    def __init__(self, image_dim: int, text_dim: int, out_dim: int = 256,
                 rank: int = 4, init_cfg: Optional[dict] = None) -> None:
        super().__init__(image_dim, text_dim, init_cfg=init_cfg)
        self._out_dim = out_dim
        self.rank = rank
        #: ``(rank, image_dim + 1, out_dim)`` image factors.
        self.image_factor = nn.Parameter(
            torch.empty(rank, image_dim + 1, out_dim))
        #: ``(rank, text_dim + 1, out_dim)`` text factors.
        self.text_factor = nn.Parameter(
            torch.empty(rank, text_dim + 1, out_dim))
        #: ``(rank,)`` weights of the rank terms.
        self.rank_weights = nn.Parameter(torch.empty(rank))
        self.bias = nn.Parameter(torch.zeros(out_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-normal factors and rank weights (the authors' code)."""
        # Per rank slice: xavier on the 3-D tensor would take rank as
        # fan_out and (d + 1) * out_dim as fan_in.
        for factor in (self.image_factor, self.text_factor):
            for r in range(self.rank):
                nn.init.xavier_normal_(factor.data[r])
        nn.init.xavier_normal_(self.rank_weights.data.view(1, -1))
        nn.init.zeros_(self.bias)

    @property
    def out_dim(self) -> int:
        return self._out_dim

    def forward(self, image: ModalityFeatures, text: ModalityFeatures,
                return_attention: bool = False) -> FusionOutput:
        x = vector_inputs(type(self).__name__, image, text)
        ones = x.image.new_ones(x.image.shape[0], 1)
        z_i = torch.cat((x.image * x.image_present, ones), -1)
        z_t = torch.cat((x.text * x.text_present, ones), -1)
        # (rank, B, out_dim) per modality.
        f_i = torch.einsum('bd,rdo->rbo', z_i, self.image_factor)
        f_t = torch.einsum('bd,rdo->rbo', z_t, self.text_factor)
        h = torch.einsum('r,rbo->bo', self.rank_weights, f_i * f_t)
        return FusionOutput(pooled=h + self.bias)
