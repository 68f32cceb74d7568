"""The interface every fusion block implements."""
from __future__ import annotations

from typing import Callable, ClassVar, FrozenSet, Optional, Union

from mmengine.model import BaseModule
from torch import Tensor

from mmfusion.structures import ModalityFeatures

#: Kinds of image input a block may accept.
VECTOR = 'vector'  # pooled (B, C) features
MAP = 'map'  # (B, C, H, W) feature maps (classification or dense tasks)


class FusionOutput:
    """What a fusion block returns.

    Attributes:
        pooled: ``(B, out_dim)`` fused vector (always set; classifiers use it).
        map: ``(B, out_dim, H, W)`` fused feature map, set by blocks that
            accept maps, for dense heads (detection, segmentation). A block
            may pass a zero-argument callable instead: it is called on the
            first access of ``map`` (and the result kept), so a classifier
            that reads only ``pooled`` never pays for a map at every
            position.
        attention: attention weights when asked for, e.g. ``(B, heads, Nq,
            Nk)`` text-over-image for cross-attention; None otherwise.
    """

    def __init__(self, pooled: Tensor,
                 map: Union[None, Tensor, Callable[[], Tensor]] = None,
                 attention: Optional[Tensor] = None) -> None:
        self.pooled = pooled
        self._map = map
        self.attention = attention

    @property
    def map(self) -> Optional[Tensor]:
        if callable(self._map):
            self._map = self._map()
        return self._map

    @map.setter
    def map(self, value: Union[None, Tensor, Callable[[], Tensor]]) -> None:
        self._map = value

    def __repr__(self) -> str:
        shape = (lambda t: None if t is None or callable(t)
                 else tuple(t.shape))
        return (f'FusionOutput(pooled={tuple(self.pooled.shape)}, '
                f'map={"<lazy>" if callable(self._map) else shape(self._map)}'
                f', attention={shape(self.attention)})')


class BaseFusion(BaseModule):
    """Fuse image and text features into one representation.

    A block is built with the two modalities' feature sizes (the model passes
    them, a config may set them) and declares:

    - ``input_kinds``: which image feature kinds it can fuse (``'vector'``
      and/or ``'map'``); a model that can only offer another kind fails at
      build time naming the blocks that fit (:func:`check_input_kind`);
    - ``out_dim``: the channel size of ``FusionOutput.pooled``;
    - ``map_dim``: the channel size of ``FusionOutput.map`` (``out_dim``
      unless the block pools several statistics into ``pooled``).

    ``forward(image, text, return_attention=False)`` receives each modality's
    :class:`ModalityFeatures` (pooled vector, tokens or map, padding mask and
    per-sample presence flags) and returns a :class:`FusionOutput`.
    Absent samples (``present`` False) carry zero features; the block must
    give finite outputs for them.

    Args:
        image_dim: channels of the image features.
        text_dim: channels of the text features.
        init_cfg: mmengine weight-initialisation config.
    """

    input_kinds: ClassVar[FrozenSet[str]] = frozenset({VECTOR})

    def __init__(self, image_dim: int, text_dim: int,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.image_dim = image_dim
        self.text_dim = text_dim

    @property
    def out_dim(self) -> int:
        raise NotImplementedError

    @property
    def map_dim(self) -> int:
        return self.out_dim

    def forward(self, image: ModalityFeatures, text: ModalityFeatures,
                return_attention: bool = False) -> FusionOutput:
        raise NotImplementedError


def check_input_kind(fusion_type: str, cls: type, kind: str) -> None:
    """Fail clearly when a block cannot fuse the image features ``kind``."""
    if kind in getattr(cls, 'input_kinds', ()):
        return
    from mmfusion.registry import MODELS
    MODELS.import_from_location()
    fits = sorted(
        name for name, c in MODELS.module_dict.items()
        if isinstance(c, type) and issubclass(c, BaseFusion)
        and kind in getattr(c, 'input_kinds', ()))
    raise ValueError(
        f'Fusion block `{fusion_type}` cannot fuse image features of kind '
        f'`{kind}` (it accepts {sorted(cls.input_kinds)}). Blocks that accept '
        f'`{kind}`: {", ".join(fits)}.')
