"""Pure functions that draw a shapes scene with PIL.

Drawing is aliased (PIL's ImageDraw has no anti-aliasing), so every pixel is
either the background or one object's pure colour: a given scene always gives
the same pixels, and each object's pixels span exactly its box
(:attr:`ShapeObject.bbox`).
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw

from .scene import COLOUR_RGB, ShapeObject

#: Canvas colour.
BACKGROUND: Tuple[int, int, int] = (0, 0, 0)


def shape_polygon(shape: str, cx: int, cy: int,
                  radius: int) -> List[Tuple[int, int]]:
    """Vertices of a polygonal shape spanning ``cx - r .. cx + r`` (and y).

    Args:
        shape: ``'square'``, ``'triangle'`` (apex up) or ``'diamond'``.
        cx, cy: centre pixel.
        radius: half-extent in pixels.
    """
    r = radius
    if shape == 'square':
        return [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r),
                (cx - r, cy + r)]
    if shape == 'triangle':
        return [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if shape == 'diamond':
        return [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)]
    raise ValueError(f'{shape!r} has no polygon; expected square, triangle '
                     'or diamond')


def draw_object(draw: ImageDraw.ImageDraw, obj: ShapeObject) -> None:
    """Draw one filled object onto ``draw``'s image."""
    fill = COLOUR_RGB[obj.colour]
    r = obj.radius
    if obj.shape == 'circle':
        # PIL's ellipse box is inclusive of both corners.
        draw.ellipse([obj.cx - r, obj.cy - r, obj.cx + r, obj.cy + r],
                     fill=fill)
    else:
        draw.polygon(shape_polygon(obj.shape, obj.cx, obj.cy, r), fill=fill)


def render_scene_image(objects: Sequence[ShapeObject],
                       image_size: int) -> Image.Image:
    """The scene as an RGB PIL image of ``image_size`` x ``image_size``."""
    image = Image.new('RGB', (image_size, image_size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for obj in objects:
        draw_object(draw, obj)
    return image


def render_scene(objects: Sequence[ShapeObject],
                 image_size: int) -> np.ndarray:
    """The scene as an ``(H, W, 3)`` uint8 RGB array (H = W = image_size)."""
    return np.asarray(render_scene_image(objects, image_size), dtype=np.uint8)
