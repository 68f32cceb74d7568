"""COCO instances json -> ODVG grounding jsonl (category names as phrases)."""
from __future__ import annotations

import json
import os.path as osp
from collections import defaultdict
from typing import Iterator, List, Optional

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
    with open(ann_file, encoding='utf-8') as f:
        coco = json.load(f)
    for key in ('images', 'annotations', 'categories'):
        if key not in coco:
            raise ValueError(f'{ann_file}: not a COCO instances file (no '
                             f'"{key}")')
    img_dir = img_dir if img_dir is not None else osp.dirname(
        osp.abspath(ann_file))
    names = {c['id']: c['name'] for c in coco['categories']}
    by_image = defaultdict(list)
    images = {img['id']: img for img in coco['images']}
    stats = stats if stats is not None else {}
    stats.setdefault('crowd_skipped', 0)
    stats.setdefault('empty_boxes_skipped', 0)
    for ann in coco['annotations']:
        if ann['image_id'] not in images:
            raise ValueError(f'{ann_file}: annotation {ann.get("id")} names '
                             f'unknown image_id {ann["image_id"]}')
        if ann['category_id'] not in names:
            raise ValueError(f'{ann_file}: annotation {ann.get("id")} names '
                             f'unknown category_id {ann["category_id"]}')
        by_image[ann['image_id']].append(ann)
    for img_id in sorted(images):
        img = images[img_id]
        path = osp.join(img_dir, img['file_name'])
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'{path} (image {img_id} of {ann_file}) not found: pass the '
                'folder holding the images with --img-dir')
        w, h = int(img['width']), int(img['height'])
        objects = []
        for ann in by_image[img_id]:
            if ann.get('iscrowd', 0) and not include_crowd:
                stats['crowd_skipped'] += 1
                continue
            x, y, bw, bh = ann['bbox']
            box = clip_box((x, y, x + bw, y + bh), w, h)
            if box is None:
                stats['empty_boxes_skipped'] += 1
                continue
            objects.append((names[ann['category_id']], box))
        yield GroundingImage(path, w, h, objects)


def category_names(ann_file: str) -> List[str]:
    """Category names of a COCO file, in id order."""
    with open(ann_file, encoding='utf-8') as f:
        cats = json.load(f)['categories']
    return [c['name'] for c in sorted(cats, key=lambda c: c['id'])]


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
    images = coco_images(ann_file, img_dir, include_crowd, stats)
    counts = write_grounding_jsonl(images, category_names(ann_file),
                                   out_file, max_negatives, seed)
    return {**counts, **stats}
