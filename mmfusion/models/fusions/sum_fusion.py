"""Fusion by summing per-modality linear projections."""
from __future__ import annotations

import torch

from mmfusion.registry import MODELS
from mmfusion.structures import ModalityFeatures
from .base_fusion import FusionOutput
from .channels_last import channels_last, to_output
from .projection_fusion import ProjectionFusion


@MODELS.register_module()
class SumFusion(ProjectionFusion):
    """Project each modality to ``out_dim`` and add: ``ReLU(W_i x_i + W_t
    x_t)``.

    The simplest additive fusion (equivalent to concatenation followed by a
    single Linear layer, split into one Linear per modality). An absent
    modality contributes nothing, not even its projection's bias, so a
    sample with only one modality gets ``ReLU(W_m x_m + b_m)``; a sample
    with neither gets zeros.

    - Vector input (``image.map`` is None): image ``(B, image_dim)`` and text
      pooled ``(B, text_dim)`` -> ``pooled`` ``(B, out_dim)``; ``map`` None.
    - Map input ``(B, image_dim, H, W)``: the same computation at every
      position with the text's pooled vector broadcast over positions ->
      ``map`` ``(B, out_dim, H, W)``; ``pooled`` is its spatial mean.

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
        # Presence masks the whole projection (bias included): a missing
        # modality must not shift the sum by a constant.
        fused = (x.image_present * self.image_proj(x.image) +
                 x.text_present * self.text_proj(x.text))
        return to_output(torch.relu(fused), x.is_map)
