"""Fusion by averaging per-modality projections over present modalities."""
from __future__ import annotations

import torch

from mmfusion.registry import MODELS
from mmfusion.structures import ModalityFeatures
from .base_fusion import FusionOutput
from .channels_last import channels_last, to_output
from .projection_fusion import ProjectionFusion


@MODELS.register_module()
class MeanFusion(ProjectionFusion):
    """Project each modality to ``out_dim`` and average over the modalities
    present in each sample: ``ReLU(sum_m p_m (W_m x_m + b_m) / sum_m p_m)``
    with presence flags ``p_m``.

    Unlike :class:`SumFusion` the fused features keep one scale whether a
    sample has one modality or two, so a model trained with modality
    dropout sees comparable inputs either way: with the text absent the
    output is exactly the image projection ``ReLU(W_i x_i + b_i)``. A
    sample with neither modality gets zeros.

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
        init_cfg: mmengine weight-initialisation config.
    """


    def forward(self, image: ModalityFeatures, text: ModalityFeatures,
                return_attention: bool = False) -> FusionOutput:
        x = channels_last(image, text)
        total = (x.image_present * self.image_proj(x.image) +
                 x.text_present * self.text_proj(x.text))
        # clamp: a sample with no modality divides 0 by 1, not by 0.
        count = (x.image_present + x.text_present).clamp(min=1.0)
        return to_output(torch.relu(total / count), x.is_map)
