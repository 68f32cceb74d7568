"""YOLO box or polygon labels + class names -> ODVG grounding jsonl."""
from __future__ import annotations

import math
import os.path as osp
from pathlib import Path
from typing import Iterator, List, NamedTuple, Optional, Tuple

from PIL import Image

from .odvg_writer import GroundingImage, clip_box, write_grounding_jsonl

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')


def read_class_names(root: str, classes_file: Optional[str] = None
                     ) -> List[str]:
    """Class names: ``classes_file`` (one a line), else ``root/classes.txt``,
    else the ``names`` of ``root/data.yaml`` (a list or an index map)."""
    candidates = [classes_file] if classes_file else [
        osp.join(root, 'classes.txt'), osp.join(root, 'data.yaml')]
    for path in candidates:
        if not path or not osp.isfile(path):
            continue
        if path.endswith(('.yaml', '.yml')):
            import yaml
            with open(path, encoding='utf-8') as f:
                names = (yaml.safe_load(f) or {}).get('names')
            if isinstance(names, dict):
                names = [names[k] for k in sorted(names, key=int)]
            if names:
                return [str(n) for n in names]
            continue
        with open(path, encoding='utf-8') as f:
            names = [line.strip() for line in f if line.strip()]
        if names:
            return names
    raise FileNotFoundError(
        f'no class names for {root}: write classes.txt (one name a line, '
        'line N = class N) or pass --classes FILE')


class LabelledImage(NamedTuple):
    """An image of a YOLO layout and the lines of its label file."""

    path: Path
    width: int
    height: int
    #: ``(where, line)`` of each non-blank line, ``where`` naming the label
    #: file and line for messages; None when the image has no label file.
    lines: Optional[List[Tuple[str, str]]]


def labelled_images(root: str, split: Optional[str] = None,
                    stats: Optional[dict] = None) -> Iterator[LabelledImage]:
    """The images under ``root/images[/split]`` (sorted) with their label
    files ``root/labels[/split]/<same path>.txt``. Counts
    ``stats['images_without_labels']`` and, once exhausted,
    ``stats['labels_without_image']``."""
    img_root = Path(root) / 'images'
    lbl_root = Path(root) / 'labels'
    if split:
        img_root, lbl_root = img_root / split, lbl_root / split
    if not img_root.is_dir():
        raise FileNotFoundError(f'{img_root} not found: expected the YOLO '
                                'layout images/[split/]*.jpg and '
                                'labels/[split/]*.txt under IN')
    stats = stats if stats is not None else {}
    stats['images_without_labels'] = 0
    seen = set()
    for path in sorted(p for p in img_root.rglob('*')
                       if p.suffix.lower() in IMAGE_SUFFIXES):
        rel = path.relative_to(img_root).with_suffix('.txt')
        seen.add(rel)
        label = lbl_root / rel
        with Image.open(path) as im:
            width, height = im.size
        lines = None
        if label.is_file():
            with open(label, encoding='utf-8') as f:
                lines = [(f'{label}:{lineno}', line)
                         for lineno, line in enumerate(f, start=1)
                         if line.strip()]
        else:
            stats['images_without_labels'] += 1
        yield LabelledImage(path, width, height, lines)
    labels = ({p.relative_to(lbl_root) for p in lbl_root.rglob('*.txt')}
              if lbl_root.is_dir() else set())
    stats['labels_without_image'] = len(labels - seen)


def read_numbers(line: str, where: str) -> List[float]:
    """The numbers of a label line (ValueError naming ``where`` if not)."""
    try:
        return [float(v) for v in line.split()]
    except ValueError:
        raise ValueError(f'{where}: not numbers: {line.strip()!r}') from None


def split_class(values: List[float], where: str, num_classes: int
                ) -> Tuple[int, List[float]]:
    """``(class index, coordinates)`` of a label line's numbers: the class
    must index the class names and the coordinates be finite."""
    cls = values[0]
    if cls != int(cls) or not 0 <= cls < num_classes:
        raise ValueError(f'{where}: class {cls:g} is not an index into '
                         f'the {num_classes} class names')
    coords = values[1:]
    if not all(math.isfinite(v) for v in coords):
        raise ValueError(f'{where}: coordinates must be finite numbers')
    return int(cls), coords


def parse_label_line(line: str, where: str, num_classes: int, width: int,
                     height: int) -> Optional[Tuple[int, Tuple]]:
    """``(class index, [x1, y1, x2, y2] in pixels)`` of one YOLO line.

    ``cls cx cy w h`` is a box, ``cls x1 y1 x2 y2 x3 y3 ...`` (three or more
    points) a polygon, whose box is its extent; coordinates are normalised
    to [0, 1] by the image size. None for a box with no area after
    clipping.

    Raises:
        ValueError: a malformed line (named by ``where``).
    """
    values = read_numbers(line, where)
    if len(values) < 5 or (len(values) != 5 and len(values) % 2 == 0):
        raise ValueError(
            f'{where}: expected "class cx cy w h" (5 values) or "class x1 y1 '
            f'x2 y2 x3 y3 ..." (a polygon), got {len(values)} values')
    cls, coords = split_class(values, where, num_classes)
    if len(values) == 5:
        cx, cy, w, h = coords
        box = ((cx - w / 2) * width, (cy - h / 2) * height,
               (cx + w / 2) * width, (cy + h / 2) * height)
    else:
        xs, ys = coords[0::2], coords[1::2]
        box = (min(xs) * width, min(ys) * height, max(xs) * width,
               max(ys) * height)
    box = clip_box(box, width, height)
    return None if box is None else (cls, box)


def yolo_images(root: str, class_names: List[str],
                split: Optional[str] = None, stats: Optional[dict] = None
                ) -> Iterator[GroundingImage]:
    """The images under ``root/images[/split]`` with the boxes of their
    label files ``root/labels[/split]/<same path>.txt`` (an image without
    one has no objects). Label files without an image are counted in
    ``stats['labels_without_image']``."""
    stats = stats if stats is not None else {}
    stats['empty_boxes_skipped'] = 0
    for image in labelled_images(root, split, stats):
        objects = []
        for where, line in image.lines or ():
            obj = parse_label_line(line, where, len(class_names),
                                   image.width, image.height)
            if obj is None:
                stats['empty_boxes_skipped'] += 1
                continue
            objects.append((class_names[obj[0]], obj[1]))
        yield GroundingImage(str(image.path), image.width, image.height,
                             objects)


def yolo_to_grounding(root: str, out_file: str,
                      classes_file: Optional[str] = None,
                      split: Optional[str] = None,
                      max_negatives: Optional[int] = None,
                      seed: int = 0) -> dict:
    """Convert a YOLO dataset (box or polygon labels) to ODVG grounding.

    One line per image; each object is a region whose phrase is its class
    name, and the classes absent from the image are its negatives (all, or
    ``max_negatives`` drawn with ``seed``). Image paths are written relative
    to ``out_file``'s folder; nothing is copied.

    Returns:
        Counts (images, boxes, samples, negatives, images_without_labels,
        labels_without_image, empty_boxes_skipped).
    """
    names = read_class_names(root, classes_file)
    stats: dict = {}
    counts = write_grounding_jsonl(yolo_images(root, names, split, stats),
                                   names, out_file, max_negatives, seed)
    return {**counts, **stats}
