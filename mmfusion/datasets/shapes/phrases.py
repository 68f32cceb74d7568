"""Referring phrases of the shapes grounding split and what they refer to.

A phrase is a :class:`Query`: optional colour, shape, size and side
constraints, written as ``the [size] [colour] {shape}s|shapes [side]``
(``the small red circles``, ``the blue shapes on the left``, ``the
triangles at the top``). It refers to every object of the scene that meets
all its constraints: zero, one or many objects.

Sides are image halves: ``on the left`` is an object whose box lies wholly
in the left half of the image (``x2 <= width / 2``), ``at the top`` one in
the upper half (image y grows downwards). Scenes asked about a side never
hold an object that straddles that side's dividing line, nor one within
:func:`side_band` pixels of it, so every object is clearly on one side
(:func:`side_mask` keeps the centres that do so).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np

from .scene import COLOURS, SHAPES, SIZES, ShapeObject, object_margin

#: Side phrases and the axis each one splits.
SIDES: Tuple[str, ...] = ('on the left', 'on the right', 'at the top',
                          'at the bottom')
SIDE_AXIS: Dict[str, str] = {
    'on the left': 'x',
    'on the right': 'x',
    'at the top': 'y',
    'at the bottom': 'y',
}
OPPOSITE_SIDE: Dict[str, str] = {
    'on the left': 'on the right',
    'on the right': 'on the left',
    'at the top': 'at the bottom',
    'at the bottom': 'at the top',
}
#: Sides with the lower coordinate (left, top) along their axis.
_LOW_SIDES = ('on the left', 'at the top')


@dataclass(frozen=True)
class Query:
    """A referring phrase as constraints; None leaves an attribute free.

    Attributes:
        colour: one of :data:`~.scene.COLOURS` or None.
        shape: one of :data:`~.scene.SHAPES` or None.
        size: one of :data:`~.scene.SIZES` or None.
        side: one of :data:`SIDES` or None.
    """

    colour: Optional[str] = None
    shape: Optional[str] = None
    size: Optional[str] = None
    side: Optional[str] = None

    def __post_init__(self) -> None:
        for name, value, options in (('colour', self.colour, COLOURS),
                                     ('shape', self.shape, SHAPES),
                                     ('size', self.size, SIZES),
                                     ('side', self.side, SIDES)):
            if value is not None and value not in options:
                raise ValueError(f'Query {name} must be one of {options} or '
                                 f'None, got {value!r}')

    @property
    def text(self) -> str:
        """The phrase: ``the [size] [colour] {shape}s|shapes [side]``."""
        words = ['the']
        if self.size is not None:
            words.append(self.size)
        if self.colour is not None:
            words.append(self.colour)
        words.append(f'{self.shape}s' if self.shape is not None else 'shapes')
        if self.side is not None:
            words.append(self.side)
        return ' '.join(words)

    def matches(self, obj: ShapeObject, image_size: int) -> bool:
        """Whether ``obj`` meets every constraint of the phrase."""
        if self.colour is not None and obj.colour != self.colour:
            return False
        if self.shape is not None and obj.shape != self.shape:
            return False
        if self.size is not None and obj.size != self.size:
            return False
        if self.side is not None and not on_side(obj, self.side, image_size):
            return False
        return True


def on_side(obj: ShapeObject, side: str, image_size: int) -> bool:
    """Whether ``obj``'s box lies wholly in the half ``side`` names."""
    x1, y1, x2, y2 = obj.bbox
    mid = image_size / 2
    if side == 'on the left':
        return x2 <= mid
    if side == 'on the right':
        return x1 >= mid
    if side == 'at the top':
        return y2 <= mid
    if side == 'at the bottom':
        return y1 >= mid
    raise ValueError(f'unknown side {side!r}; expected one of {SIDES}')


def side_band(image_size: int) -> int:
    """Empty pixels kept on each side of a dividing line (3 at 96 px)."""
    return object_margin(image_size)


def side_mask(radius: int, image_size: int, axis: str,
              side: Optional[str] = None) -> np.ndarray:
    """Centres where an object of ``radius`` is clearly on one side.

    Args:
        radius: the object's radius.
        image_size: canvas side.
        axis: ``'x'`` (left/right halves) or ``'y'`` (top/bottom).
        side: a side of that axis; None accepts either side.

    Returns:
        ``(image_size, image_size)`` bool array indexed ``[cy, cx]``: True
        where the box ``[c - r, c + r + 1)`` ends :func:`side_band` pixels
        before the dividing line or starts that far after it.
    """
    if axis not in ('x', 'y'):
        raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")
    if side is not None and SIDE_AXIS[side] != axis:
        raise ValueError(f'side {side!r} does not split axis {axis!r}')
    mid = image_size / 2
    band = side_band(image_size)
    coords = np.arange(image_size)
    low = coords + radius + 1 <= mid - band
    high = coords - radius >= mid + band
    if side is None:
        ok = low | high
    else:
        ok = low if side in _LOW_SIDES else high
    if axis == 'x':
        return np.broadcast_to(ok[None, :], (image_size, image_size)).copy()
    return np.broadcast_to(ok[:, None], (image_size, image_size)).copy()
