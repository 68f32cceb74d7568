"""Read a COCO instances file: what every COCO converter shares."""
from __future__ import annotations

import json
import os.path as osp
from collections import defaultdict
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Tuple


@dataclass
class CocoImage:
    """One image of a COCO instances file with its annotations.

    Attributes:
        id: the image's ``id``.
        path: its file (``img_dir`` joined with ``file_name``; it exists).
        width, height: its size in pixels, from the file.
        annotations: its annotation dicts, in file order.
    """

    id: int
    path: str
    width: int
    height: int
    annotations: List[dict]


def read_coco(ann_file: str, img_dir: Optional[str] = None
              ) -> Tuple[Dict[int, str], Iterator[CocoImage]]:
    """The category names (id -> name) of a COCO instances file, and its
    images in id order with their annotations.

    ``img_dir`` defaults to the annotation file's folder. The whole file is
    checked before the first image is yielded.

    Raises:
        ValueError: the file lacks ``images``, ``annotations`` or
            ``categories``, or an annotation names an unknown image or
            category.
        FileNotFoundError: an image file is missing (when its image is
            reached).
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
    images = {img['id']: img for img in coco['images']}
    by_image = defaultdict(list)
    for ann in coco['annotations']:
        if ann['image_id'] not in images:
            raise ValueError(f'{ann_file}: annotation {ann.get("id")} names '
                             f'unknown image_id {ann["image_id"]}')
        if ann['category_id'] not in names:
            raise ValueError(f'{ann_file}: annotation {ann.get("id")} names '
                             f'unknown category_id {ann["category_id"]}')
        by_image[ann['image_id']].append(ann)

    def iterate() -> Iterator[CocoImage]:
        for img_id in sorted(images):
            img = images[img_id]
            path = osp.join(img_dir, img['file_name'])
            if not osp.isfile(path):
                raise FileNotFoundError(
                    f'{path} (image {img_id} of {ann_file}) not found: pass '
                    'the folder holding the images with --img-dir')
            yield CocoImage(img_id, path, int(img['width']),
                            int(img['height']), by_image[img_id])

    return names, iterate()
