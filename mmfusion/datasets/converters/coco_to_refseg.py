"""COCO instances json -> referring segmentation (category names as
phrases)."""
from __future__ import annotations

from collections import defaultdict
from typing import Iterator, Optional

import numpy as np

from .coco_reader import read_coco
from .refseg_writer import RefSegImage, union_masks, write_refseg


def _mask_utils():
    try:
        from pycocotools import mask as mask_utils
    except ImportError:  # pragma: no cover - mmdet installs it
        raise ImportError('coco_to_refseg needs pycocotools (installed with '
                          'mmdet): pip install pycocotools') from None
    return mask_utils


def annotation_mask(segmentation, height: int, width: int) -> np.ndarray:
    """``(height, width)`` bool mask of a COCO ``segmentation``: a list of
    polygons ``[[x1, y1, x2, y2, ...], ...]`` in pixels, an uncompressed RLE
    ``{"counts": [int, ...], "size": [h, w]}`` or a compressed one
    (``counts`` a string)."""
    mask_utils = _mask_utils()
    if isinstance(segmentation, list):
        polys = [p for p in segmentation if len(p) >= 6]
        if not polys:
            return np.zeros((height, width), dtype=bool)
        rle = mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
    elif isinstance(segmentation, dict) and 'counts' in segmentation:
        if isinstance(segmentation['counts'], list):
            rle = mask_utils.frPyObjects(segmentation, height, width)
        else:
            rle = dict(segmentation)
            if isinstance(rle['counts'], str):
                rle['counts'] = rle['counts'].encode('ascii')
    else:
        raise ValueError(f'unknown COCO segmentation {type(segmentation)}')
    mask = mask_utils.decode(rle)
    if mask.ndim == 3:
        mask = mask.any(axis=2)
    if mask.shape != (height, width):
        raise ValueError(f'an RLE of size {mask.shape} on an image of '
                         f'{(height, width)}')
    return mask.astype(bool)


def coco_refseg_images(ann_file: str, img_dir: Optional[str] = None,
                       stats: Optional[dict] = None
                       ) -> Iterator[RefSegImage]:
    """The images of a COCO instances file with one mask per category
    present: the union of its instances (1), its crowd regions ignored
    (255). A category with only crowd annotations gets no phrase;
    annotations without ``segmentation`` are skipped (counted in
    ``stats['no_mask_skipped']``).

    Raises:
        ValueError: an annotation names an unknown image or category.
        FileNotFoundError: an image file is missing.
    """
    names, images = read_coco(ann_file, img_dir)
    stats = stats if stats is not None else {}
    stats.setdefault('no_mask_skipped', 0)
    stats.setdefault('crowd_regions', 0)
    for img in images:
        w, h = img.width, img.height
        parts = defaultdict(list)
        for ann in img.annotations:
            seg = ann.get('segmentation')
            if not seg:
                stats['no_mask_skipped'] += 1
                continue
            crowd = bool(ann.get('iscrowd', 0))
            stats['crowd_regions'] += int(crowd)
            parts[ann['category_id']].append(
                (annotation_mask(seg, h, w), crowd))
        masks = {}
        for cat_id in sorted(parts):
            if all(crowd for _, crowd in parts[cat_id]):
                continue
            masks[names[cat_id]] = union_masks(parts[cat_id], h, w)
        yield RefSegImage(img.path, w, h, masks)


def coco_to_refseg(ann_file: str, out_file: str,
                   img_dir: Optional[str] = None) -> dict:
    """Convert a COCO instances file to referring segmentation.

    One line per (image, category present): the phrase is the category
    name and the mask the union of that category's instances (polygons or
    RLE), crowd regions of the category ignored (255). Masks go to
    ``masks/<out_file stem>/``; paths are relative to ``out_file``'s folder.

    Returns:
        Counts (images, images_without_phrases, samples, no_mask_skipped,
        crowd_regions).
    """
    stats: dict = {}
    counts = write_refseg(coco_refseg_images(ann_file, img_dir, stats),
                          out_file)
    return {**counts, **stats}
