"""Fusion by a learned weighted average of per-modality projections."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from mmfusion.registry import MODELS
from mmfusion.structures import ModalityFeatures
from .base_fusion import FusionOutput
from .channels_last import channels_last, to_output
from .projection_fusion import ProjectionFusion


@MODELS.register_module()
class WeightedFusion(ProjectionFusion):
    """Learned per-modality weights on per-modality projections.

    ``ReLU(w_i (W_i x_i + b_i) + w_t (W_t x_t + b_t))`` where ``(w_i, w_t)``
    is the softmax of two learned logits, renormalised per sample over the
    modalities present (a missing modality's weight goes to the other; a
    sample with neither gets zero weights and zero output). The weights are
    global, not input-dependent: they show how much the trained model
    relies on each modality (compare :class:`GatedFusion`, which decides
    per sample and per channel). Logits start at zero: equal weights, i.e.
    :class:`MeanFusion`.

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

    def __init__(self, image_dim: int, text_dim: int, out_dim: int = 256,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(image_dim, text_dim, out_dim, init_cfg=init_cfg)
        #: ``(2,)`` logits of the (image, text) weights.
        self.modality_logits = nn.Parameter(torch.zeros(2))

    def modality_weights(self, image_present: Tensor,
                         text_present: Tensor) -> Tensor:
        """``(B, 2)`` (image, text) weights from ``(B,)`` presence flags.

        Each row sums to 1 when the sample has a modality, else is zero.
        """
        present = torch.stack((image_present, text_present), -1).to(
            self.modality_logits.dtype)
        weights = torch.softmax(self.modality_logits, 0) * present
        # Softmax weights are > 0, so a positive sum only vanishes when no
        # modality is present; the clamp then keeps 0 / 0 out.
        return weights / weights.sum(-1, keepdim=True).clamp(min=1e-12)

    def forward(self, image: ModalityFeatures, text: ModalityFeatures,
                return_attention: bool = False) -> FusionOutput:
        x = channels_last(image, text)
        weights = self.modality_weights(image.get_present(),
                                        text.get_present()).to(x.image.dtype)
        fused = (x.per_sample(weights[:, 0]) * self.image_proj(x.image) +
                 x.per_sample(weights[:, 1]) * self.text_proj(x.text))
        return to_output(torch.relu(fused), x.is_map)
