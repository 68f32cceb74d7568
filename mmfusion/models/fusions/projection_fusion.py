"""Base of the additive blocks: one linear projection per modality."""
from __future__ import annotations

from typing import ClassVar, FrozenSet, Optional

from torch import nn

from .base_fusion import MAP, VECTOR, BaseFusion


class ProjectionFusion(BaseFusion):
    """Projects the image ``(.., image_dim)`` and the text's pooled vector
    ``(.., text_dim)`` to ``out_dim`` each (``image_proj``, ``text_proj``);
    subclasses say how the two projections combine (:class:`SumFusion`,
    :class:`MeanFusion`, :class:`WeightedFusion`).

    Takes vectors or maps (the projections then run at every position,
    the text broadcast over them). Not registered: not a block by itself.

    Args:
        image_dim: image channels.
        text_dim: text channels.
        out_dim: output channels.
        init_cfg: mmengine weight-initialisation config.
    """

    input_kinds: ClassVar[FrozenSet[str]] = frozenset({VECTOR, MAP})

    def __init__(self, image_dim: int, text_dim: int, out_dim: int = 256,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(image_dim, text_dim, init_cfg=init_cfg)
        self._out_dim = out_dim
        self.image_proj = nn.Linear(image_dim, out_dim)
        self.text_proj = nn.Linear(text_dim, out_dim)

    @property
    def out_dim(self) -> int:
        return self._out_dim
