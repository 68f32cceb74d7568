"""Late fusion: independent per-modality MLPs, averaged."""
from __future__ import annotations

from typing import ClassVar, FrozenSet, List, Optional, Sequence

from torch import nn

from mmfusion.registry import MODELS
from mmfusion.structures import ModalityFeatures
from .base_fusion import VECTOR, BaseFusion, FusionOutput
from .channels_last import vector_inputs


def _mlp(c_in: int, hidden_dims: Sequence[int], out_dim: int,
         dropout: float) -> nn.Sequential:
    layers: List[nn.Module] = []
    for hidden in hidden_dims:
        layers += [nn.Linear(c_in, hidden), nn.ReLU(inplace=True),
                   nn.Dropout(dropout)]
        c_in = hidden
    layers += [nn.Linear(c_in, out_dim), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


@MODELS.register_module()
class LateFusion(BaseFusion):
    """Late fusion: each modality through its own MLP, outputs averaged.

    ``pooled = sum_m p_m g_m(x_m) / sum_m p_m`` with one MLP ``g_m`` per
    modality (``Linear + ReLU (+ Dropout)`` per ``hidden_dims`` entry, then
    ``Linear + ReLU`` to ``out_dim``) and presence flags ``p_m``; a sample
    with neither modality gets zeros. The result is additive in the
    modalities: no feature of one modality can change how the other is
    represented. The baseline that shows what interaction buys.

    The fused vector has no interaction, but a head with hidden layers on
    top can still combine the two halves non-linearly; for strict late
    fusion (an average of per-modality scores) use a linear head
    (``ClsHead(hidden_dims=())``).

    Vector input only: image ``(B, image_dim)``, text pooled ``(B,
    text_dim)`` -> ``pooled`` ``(B, out_dim)``. Only the text's pooled
    vector is used, so padding tokens never matter.

    Args:
        image_dim: image channels.
        text_dim: text channels.
        out_dim: output channels.
        hidden_dims: hidden layer sizes of each modality's MLP.
        dropout: dropout after each hidden layer.
        init_cfg: mmengine weight-initialisation config.
    """

    input_kinds: ClassVar[FrozenSet[str]] = frozenset({VECTOR})

    def __init__(self, image_dim: int, text_dim: int, out_dim: int = 256,
                 hidden_dims: Sequence[int] = (256, ), dropout: float = 0.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(image_dim, text_dim, init_cfg=init_cfg)
        self._out_dim = out_dim
        self.image_mlp = _mlp(image_dim, hidden_dims, out_dim, dropout)
        self.text_mlp = _mlp(text_dim, hidden_dims, out_dim, dropout)

    @property
    def out_dim(self) -> int:
        return self._out_dim

    def forward(self, image: ModalityFeatures, text: ModalityFeatures,
                return_attention: bool = False) -> FusionOutput:
        x = vector_inputs(type(self).__name__, image, text)
        total = (x.image_present * self.image_mlp(x.image) +
                 x.text_present * self.text_mlp(x.text))
        count = (x.image_present + x.text_present).clamp(min=1.0)
        return FusionOutput(pooled=total / count)
