"""YOLO polygon labels + class names -> referring segmentation."""
from __future__ import annotations

from collections import defaultdict
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw

from .refseg_writer import RefSegImage, union_masks, write_refseg
from .yolo_to_grounding import (labelled_images, read_class_names,
                                read_numbers, split_class)


def parse_polygon_line(line: str, where: str, num_classes: int
                       ) -> Tuple[int, List[Tuple[float, float]]]:
    """``(class index, [(x, y), ...] normalised)`` of one YOLO segmentation
    line ``class x1 y1 x2 y2 x3 y3 ...``.

    Raises:
        ValueError: not a polygon of at least three points, or a bad class
            (named by ``where``); a 5-value box line is refused too, since a
            box is no mask.
    """
    values = read_numbers(line, where)
    if len(values) == 5:
        raise ValueError(f'{where}: a box line ("class cx cy w h"); '
                         'referring segmentation needs polygon labels '
                         '("class x1 y1 x2 y2 x3 y3 ...")')
    if len(values) < 7 or len(values) % 2 == 0:
        raise ValueError(f'{where}: expected "class x1 y1 x2 y2 x3 y3 ..." '
                         f'(three or more points), got {len(values)} values')
    cls, coords = split_class(values, where, num_classes)
    return cls, list(zip(coords[0::2], coords[1::2]))


def rasterize_polygon(points: Sequence[Tuple[float, float]], width: int,
                      height: int) -> np.ndarray:
    """``(height, width)`` bool mask of a polygon with vertices normalised
    to [0, 1] (PIL fill, edge pixels included)."""
    canvas = Image.new('L', (width, height), 0)
    ImageDraw.Draw(canvas).polygon(
        [(x * width, y * height) for x, y in points], fill=1, outline=1)
    return np.asarray(canvas, dtype=bool)


def yolo_refseg_images(root: str, class_names: List[str],
                       split: Optional[str] = None,
                       stats: Optional[dict] = None
                       ) -> Iterator[RefSegImage]:
    """The images under ``root/images[/split]`` with one mask per class of
    their label file ``root/labels[/split]/<same path>.txt`` (the union of
    that class's polygons). Images without a label file get no phrase;
    label files without an image are counted in
    ``stats['labels_without_image']``."""
    stats = stats if stats is not None else {}
    stats['polygons'] = 0
    for image in labelled_images(root, split, stats):
        parts = defaultdict(list)
        for where, line in image.lines or ():
            cls, points = parse_polygon_line(line, where, len(class_names))
            parts[cls].append(
                (rasterize_polygon(points, image.width, image.height), False))
            stats['polygons'] += 1
        masks = {class_names[c]: union_masks(parts[c], image.height,
                                             image.width)
                 for c in sorted(parts)}
        yield RefSegImage(str(image.path), image.width, image.height, masks)


def yolo_to_refseg(root: str, out_file: str,
                   classes_file: Optional[str] = None,
                   split: Optional[str] = None) -> dict:
    """Convert a YOLO segmentation dataset to referring segmentation.

    One line per (image, class present): the phrase is the class name and
    the mask the union of that class's polygons. Masks go to
    ``masks/<out_file stem>/``; paths are relative to ``out_file``'s folder
    (images are not copied).

    Returns:
        Counts (images, images_without_phrases, samples, polygons,
        images_without_labels, labels_without_image).
    """
    names = read_class_names(root, classes_file)
    stats: dict = {}
    counts = write_refseg(yolo_refseg_images(root, names, split, stats),
                          out_file)
    return {**counts, **stats}
