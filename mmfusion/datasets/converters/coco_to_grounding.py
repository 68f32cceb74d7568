"""COCO instances json -> ODVG grounding jsonl (category names as phrases)."""
from __future__ import annotations

from typing import Dict, Iterable, Iterator, Optional

from .coco_reader import CocoImage, read_coco
from .odvg_writer import GroundingImage, clip_box, write_grounding_jsonl


def coco_images(ann_file: str, img_dir: Optional[str] = None,
                include_crowd: bool = False, stats: Optional[dict] = None
                ) -> Iterator[GroundingImage]:
    """The images of a COCO instances file with their named boxes.

    Boxes (``[x, y, w, h]``) become ``[x1, y1, x2, y2]`` clipped to the
    image; boxes with no area left and crowd annotations (unless
    ``include_crowd``) are dropped and counted in ``stats``.

    Raises:
        ValueError: an annotation names an unknown image or category.
        FileNotFoundError: an image file is missing from ``img_dir``.
    """
    names, images = read_coco(ann_file, img_dir)
    return grounding_images(names, images, include_crowd, stats)


def grounding_images(names: Dict[int, str], images: Iterable[CocoImage],
                     include_crowd: bool = False,
                     stats: Optional[dict] = None
                     ) -> Iterator[GroundingImage]:
    """:func:`coco_images` from what :func:`read_coco` returned."""
    stats = stats if stats is not None else {}
    stats.setdefault('crowd_skipped', 0)
    stats.setdefault('empty_boxes_skipped', 0)
    for img in images:
        w, h = img.width, img.height
        objects = []
        for ann in img.annotations:
            if ann.get('iscrowd', 0) and not include_crowd:
                stats['crowd_skipped'] += 1
                continue
            x, y, bw, bh = ann['bbox']
            box = clip_box((x, y, x + bw, y + bh), w, h)
            if box is None:
                stats['empty_boxes_skipped'] += 1
                continue
            objects.append((names[ann['category_id']], box))
        yield GroundingImage(img.path, w, h, objects)


def coco_to_grounding(ann_file: str, out_file: str,
                      img_dir: Optional[str] = None,
                      max_negatives: Optional[int] = None, seed: int = 0,
                      include_crowd: bool = False) -> dict:
    """Convert a COCO instances file to an ODVG grounding jsonl file.

    One line per image; each box is a region whose phrase is its category
    name, and the categories absent from the image are its negatives (all
    of them, or ``max_negatives`` drawn with ``seed``). Image paths are
    written relative to ``out_file``'s folder.

    Returns:
        Counts (images, boxes, samples, negatives, crowd_skipped,
        empty_boxes_skipped).
    """
    stats: dict = {}
    # One read of the file (a large one takes seconds to parse): the
    # category names, in id order, and the images.
    names, coco = read_coco(ann_file, img_dir)
    images = grounding_images(names, coco, include_crowd, stats)
    counts = write_grounding_jsonl(images, [names[i] for i in sorted(names)],
                                   out_file, max_negatives, seed)
    return {**counts, **stats}
