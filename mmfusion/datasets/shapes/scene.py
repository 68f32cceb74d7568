"""Scene data of the shapes benchmark and the helpers that sample scenes.

A scene is a list of :class:`ShapeObject` on a square black canvas of
``image_size`` pixels. Coordinates are integer pixel indices: ``(cx, cy)`` is
the centre pixel (x to the right, y downwards) and the object covers the
pixels ``cx - radius .. cx + radius`` (and the same in y), so its tight box in
continuous coordinates is ``[cx - r, cy - r, cx + r + 1, cy + r + 1]``.

Objects are placed by rejection sampling on a boolean mask of valid centre
pixels: every placed object removes the centres that would make a new object's
box touch its box (plus a margin), so a placement is found whenever one
exists, at the cost of a few small numpy operations.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

#: Colour names and their pure saturated RGB values.
COLOUR_RGB: Dict[str, Tuple[int, int, int]] = {
    'red': (255, 0, 0),
    'green': (0, 255, 0),
    'blue': (0, 0, 255),
    'yellow': (255, 255, 0),
    'magenta': (255, 0, 255),
    'cyan': (0, 255, 255),
}
COLOURS: Tuple[str, ...] = tuple(COLOUR_RGB)
SHAPES: Tuple[str, ...] = ('circle', 'square', 'triangle', 'diamond')
SIZES: Tuple[str, ...] = ('small', 'large')

#: Radius range (inclusive, pixels) of each size at the reference 64 px
#: canvas; other canvases scale it linearly.
_REFERENCE_SIZE = 64
_RADIUS_AT_64: Dict[str, Tuple[int, int]] = {
    'small': (5, 6),
    'large': (9, 10),
}


@dataclass(frozen=True)
class ShapeObject:
    """One drawn object of a scene.

    Attributes:
        shape: one of :data:`SHAPES`.
        colour: one of :data:`COLOURS`.
        size: one of :data:`SIZES` (the radius range it was drawn from).
        cx: x index of the centre pixel.
        cy: y index of the centre pixel.
        radius: half-extent in pixels; the object spans ``2 * radius + 1``
            pixels in x and in y and touches all four sides of its box.
    """

    shape: str
    colour: str
    size: str
    cx: int
    cy: int
    radius: int

    @property
    def bbox(self) -> Tuple[int, int, int, int]:
        """Tight box ``(x1, y1, x2, y2)``; continuous, x2 and y2 exclusive."""
        r = self.radius
        return (self.cx - r, self.cy - r, self.cx + r + 1, self.cy + r + 1)

    @property
    def centre(self) -> Tuple[float, float]:
        """Centre ``(x, y)`` of :attr:`bbox` in continuous coordinates."""
        return (self.cx + 0.5, self.cy + 0.5)

    def to_dict(self) -> dict:
        """JSON-ready record, as written to ``scenes_<split>.jsonl``."""
        return {
            'shape': self.shape,
            'colour': self.colour,
            'size': self.size,
            'bbox': list(self.bbox),
            'centre': list(self.centre),
            'radius': self.radius,
        }

    @classmethod
    def from_dict(cls, record: dict) -> 'ShapeObject':
        """Inverse of :meth:`to_dict`."""
        x1, y1 = record['bbox'][:2]
        r = int(record['radius'])
        return cls(shape=record['shape'], colour=record['colour'],
                   size=record['size'], cx=int(x1) + r, cy=int(y1) + r,
                   radius=r)


class ObjectSpec(NamedTuple):
    """What to draw before it is placed: attributes without a position."""

    shape: str
    colour: str
    size: str


def radius_range(size: str, image_size: int) -> Tuple[int, int]:
    """Inclusive radius range of ``size`` on an ``image_size`` canvas."""
    lo, hi = _RADIUS_AT_64[size]
    scale = image_size / _REFERENCE_SIZE
    lo_s = max(1, int(round(lo * scale)))
    hi_s = max(lo_s, int(round(hi * scale)))
    return lo_s, hi_s


def object_margin(image_size: int) -> int:
    """Empty pixels kept between the boxes of two objects (2 px at 64 px)."""
    return max(1, int(round(2 * image_size / _REFERENCE_SIZE)))


def relation_gap(radius_a: int, radius_b: int) -> int:
    """Empty pixels required between two related objects' edges.

    At least one (the larger) radius, so that ``left of`` / ``above`` never
    hinge on a pixel or two.
    """
    return max(radius_a, radius_b)


#: Relation words of position questions and their opposites.
RELATIONS: Tuple[str, ...] = ('left of', 'right of', 'above', 'below')
OPPOSITE: Dict[str, str] = {
    'left of': 'right of',
    'right of': 'left of',
    'above': 'below',
    'below': 'above',
}


def holds(a: ShapeObject, relation: str, b: ShapeObject) -> bool:
    """Whether ``a {relation} b`` holds with the benchmark's required gap.

    Image y grows downwards, so ``above`` means a smaller y.
    """
    gap = relation_gap(a.radius, b.radius)
    ax1, ay1, ax2, ay2 = a.bbox
    bx1, by1, bx2, by2 = b.bbox
    if relation == 'left of':
        return bx1 - ax2 >= gap
    if relation == 'right of':
        return ax1 - bx2 >= gap
    if relation == 'above':
        return by1 - ay2 >= gap
    if relation == 'below':
        return ay1 - by2 >= gap
    raise ValueError(f'unknown relation {relation!r}; expected one of '
                     f'{RELATIONS}')


def centre_mask(radius: int, image_size: int, placed: Sequence[ShapeObject],
                margin: int, border: int = 1) -> np.ndarray:
    """Valid centre pixels for a new object of ``radius``.

    Args:
        radius: radius of the new object.
        image_size: canvas side in pixels.
        placed: objects already in the scene; the new object's box must be at
            least ``margin`` empty pixels away from each of theirs (separated
            along x or along y).
        margin: see ``placed``.
        border: empty pixels kept between any object and the canvas edge.

    Returns:
        ``(image_size, image_size)`` bool array indexed ``[cy, cx]``.
    """
    mask = np.zeros((image_size, image_size), dtype=bool)
    lo, hi = border + radius, image_size - 1 - border - radius
    if lo > hi:
        return mask
    mask[lo:hi + 1, lo:hi + 1] = True
    for obj in placed:
        # Boxes are disjoint with `margin` empty pixels iff the centres are at
        # least `reach` apart along x or along y.
        reach = radius + obj.radius + 1 + margin
        y0, x0 = max(0, obj.cy - reach + 1), max(0, obj.cx - reach + 1)
        mask[y0:obj.cy + reach, x0:obj.cx + reach] = False
    return mask


def relation_mask(radius: int, image_size: int, relation: str,
                  anchor: ShapeObject) -> np.ndarray:
    """Centres where a new object of ``radius`` is ``relation`` ``anchor``.

    The new object stands in ``relation`` to the anchor (e.g. ``'left of'``:
    the new object is left of the anchor) with :func:`relation_gap` empty
    pixels between the edges; the other axis is free.

    Returns:
        ``(image_size, image_size)`` bool array indexed ``[cy, cx]``.
    """
    mask = np.zeros((image_size, image_size), dtype=bool)
    # Distance between centres along the relation's axis so that the edges
    # are `gap` empty pixels apart (see `holds`).
    reach = radius + anchor.radius + 1 + relation_gap(radius, anchor.radius)
    if relation == 'left of':
        mask[:, :max(0, anchor.cx - reach + 1)] = True
    elif relation == 'right of':
        mask[:, anchor.cx + reach:] = True
    elif relation == 'above':
        mask[:max(0, anchor.cy - reach + 1), :] = True
    elif relation == 'below':
        mask[anchor.cy + reach:, :] = True
    else:
        raise ValueError(f'unknown relation {relation!r}; expected one of '
                         f'{RELATIONS}')
    return mask


def sample_radius(rng: np.random.Generator, size: str, image_size: int) -> int:
    """A radius drawn uniformly from ``size``'s range."""
    lo, hi = radius_range(size, image_size)
    return int(rng.integers(lo, hi + 1))


def pick_centre(rng: np.random.Generator,
                mask: np.ndarray) -> Optional[Tuple[int, int]]:
    """A uniformly drawn ``(cx, cy)`` among the True pixels, or None."""
    valid = np.flatnonzero(mask)
    if valid.size == 0:
        return None
    flat = int(valid[rng.integers(valid.size)])
    cy, cx = divmod(flat, mask.shape[1])
    return cx, cy


def place_object(rng: np.random.Generator, spec: ObjectSpec, image_size: int,
                 placed: Sequence[ShapeObject], margin: int,
                 extra_mask: Optional[np.ndarray] = None,
                 allow_shrink: bool = True) -> Optional[ShapeObject]:
    """Place ``spec`` without overlapping ``placed``; None when impossible.

    Args:
        rng: random generator.
        spec: attributes of the object.
        image_size: canvas side.
        placed: objects already placed.
        margin: empty pixels between boxes.
        extra_mask: optional further constraint on the centre (e.g. from
            :func:`relation_mask`).
        allow_shrink: a ``large`` object that does not fit anywhere is
            redrawn ``small`` rather than failing the scene, so that crowded
            scenes (6 objects) stay cheap to sample. Sizes are never part of
            the classification texts, and the scene data records the size
            actually drawn.
    """
    sizes = [spec.size]
    if allow_shrink and spec.size == 'large':
        sizes.append('small')
    for size in sizes:
        radius = sample_radius(rng, size, image_size)
        mask = centre_mask(radius, image_size, placed, margin)
        if extra_mask is not None:
            mask &= extra_mask
        centre = pick_centre(rng, mask)
        if centre is not None:
            return ShapeObject(spec.shape, spec.colour, size, centre[0],
                               centre[1], radius)
    return None


def place_scene(rng: np.random.Generator, specs: Sequence[ObjectSpec],
                image_size: int, margin: int,
                placed: Sequence[ShapeObject] = ()
                ) -> Optional[List[ShapeObject]]:
    """Place every spec around the already ``placed`` objects.

    Large objects are placed first (they are the hard ones to fit). The
    returned list holds ``placed`` then the new objects in the order of
    ``specs``; callers shuffle it (:func:`shuffled`) before writing, so the
    listed order does not tell which object a question is about.

    Returns:
        The scene, or None when some object did not fit (the caller redraws).
    """
    objects: List[ShapeObject] = list(placed)
    order = sorted(range(len(specs)), key=lambda i: specs[i].size != 'large')
    new: Dict[int, ShapeObject] = {}
    for i in order:
        obj = place_object(rng, specs[i], image_size, objects, margin)
        if obj is None:
            return None
        objects.append(obj)
        new[i] = obj
    return list(placed) + [new[i] for i in range(len(specs))]


def shuffled(rng: np.random.Generator,
             objects: Sequence[ShapeObject]) -> List[ShapeObject]:
    """``objects`` in a random order (the order objects are listed in)."""
    perm = rng.permutation(len(objects))
    return [objects[int(i)] for i in perm]


def random_size(rng: np.random.Generator) -> str:
    """``small`` or ``large`` with equal chance."""
    return SIZES[int(rng.integers(len(SIZES)))]


def choice(rng: np.random.Generator, options: Sequence[str]) -> str:
    """One element of ``options``, uniformly."""
    return options[int(rng.integers(len(options)))]


def choose_distinct(rng: np.random.Generator, options: Sequence[str],
                    k: int) -> List[str]:
    """``k`` distinct elements of ``options`` in random order."""
    idx = rng.choice(len(options), size=k, replace=False)
    return [options[int(i)] for i in idx]
