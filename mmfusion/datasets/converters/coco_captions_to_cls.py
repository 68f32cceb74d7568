"""COCO captions -> image-caption matching (binary classification).

Each image's own captions are positives (``match``); negatives
(``mismatch``) pair the image with a caption of another image of the same
split, drawn with a fixed seed, so the answer needs both modalities (every
caption appears with its own image and with another one). Classes:
``mismatch``, ``match`` (index 1, scored by the binary ``auroc``).
"""
from __future__ import annotations

import json
import os.path as osp
import random
import re
from typing import Dict, List, Optional, Tuple

from .cls_writer import ClsSample, split_groups, write_cls_dataset

CLASSES = ('mismatch', 'match')


def read_coco_captions(ann_file: str) -> Tuple[Dict[int, str],
                                               Dict[int, List[str]]]:
    """``({image id: file name}, {image id: [captions]})`` of a COCO
    captions file (``captions_train2017.json``)."""
    if not osp.isfile(ann_file):
        raise FileNotFoundError(f'{ann_file} does not exist')
    with open(ann_file, encoding='utf-8') as f:
        data = json.load(f)
    if not isinstance(data, dict) or 'images' not in data or \
            'annotations' not in data:
        raise ValueError(f'{ann_file}: expected a COCO captions file with '
                         '"images" and "annotations"')
    files = {}
    for i, img in enumerate(data['images']):
        if 'id' not in img or 'file_name' not in img:
            raise ValueError(f'{ann_file}: images[{i}] lacks "id" or '
                             '"file_name"')
        files[int(img['id'])] = img['file_name']
    captions: Dict[int, List[str]] = {k: [] for k in files}
    for i, ann in enumerate(data['annotations']):
        if 'caption' not in ann:
            raise ValueError(f'{ann_file}: annotations[{i}] has no '
                             '"caption" (is this an instances file? use '
                             'coco_to_grounding for boxes)')
        image_id = int(ann['image_id'])
        if image_id not in files:
            raise ValueError(f'{ann_file}: annotations[{i}] refers to image '
                             f'{image_id}, which "images" does not list')
        text = ' '.join(str(ann['caption']).split())
        if text:
            captions[image_id].append(text)
    return files, captions


def default_image_root(ann_file: str) -> str:
    """``annotations/captions_val2017.json`` -> ``../val2017`` when that
    folder exists (COCO's layout), else the annotation file's folder."""
    folder = osp.dirname(osp.abspath(ann_file))
    m = re.match(r'captions_(\w+)\.json$', osp.basename(ann_file))
    if m:
        for candidate in (osp.join(osp.dirname(folder), m.group(1)),
                          osp.join(folder, m.group(1))):
            if osp.isdir(candidate):
                return candidate
    return folder


def coco_captions_to_cls(ann_file: str, out_dir: str,
                         image_root: Optional[str] = None,
                         negatives: int = 1, captions_per_image: int = 1,
                         split: Optional[str] = None,
                         val_fraction: float = 0.1,
                         test_fraction: float = 0.1, seed: int = 0,
                         skip_missing: bool = False) -> Dict[str, object]:
    """Write matching pairs for ``ann_file`` into ``out_dir``.

    Args:
        ann_file: COCO captions json.
        out_dir: output folder (``classes.txt``, ``<split>.jsonl``).
        image_root: folder of the images (default: see
            :func:`default_image_root`).
        negatives: mismatched captions per positive.
        captions_per_image: positives per image (its first captions); 0
            keeps every caption.
        split: write everything as this split (e.g. ``test`` for
            ``captions_val2017.json``); default: split the images by
            ``val_fraction``/``test_fraction``.
        seed: seed of the split and of the negatives.
        skip_missing: leave out images whose file is missing (counted)
            instead of failing.
    """
    if negatives < 0 or captions_per_image < 0:
        raise ValueError('negatives and captions_per_image must be >= 0')
    files, captions = read_coco_captions(ann_file)
    root = image_root or default_image_root(ann_file)
    positives: List[ClsSample] = []
    missing = 0
    for image_id in sorted(files):
        caps = captions[image_id]
        if not caps:
            continue
        path = osp.join(root, files[image_id])
        if not osp.isfile(path):
            if skip_missing:
                missing += 1
                continue
            raise ValueError(f'{ann_file}: image {path} (id {image_id}) not '
                             'found; pass --image-root, or --skip-missing')
        if captions_per_image:
            caps = caps[:captions_per_image]
        for cap in caps:
            positives.append(ClsSample(image=path, text=cap, label='match',
                                       group=str(image_id),
                                       extra={'image_id': image_id}))
    if split is not None:
        groups = {split: positives}
    else:
        groups = split_groups(positives, val_fraction, test_fraction, seed)
    rng = random.Random(seed)
    out: Dict[str, List[ClsSample]] = {}
    for name, samples in groups.items():
        pool: Dict[int, List[str]] = {}
        for s in samples:
            pool.setdefault(s.extra['image_id'], []).append(s.text)
        ids = sorted(pool)
        rows: List[ClsSample] = []
        for s in samples:
            rows.append(s)
            others = [i for i in ids if i != s.extra['image_id']]
            if not others:
                continue
            for _ in range(negatives):
                other = rng.choice(others)
                rows.append(ClsSample(
                    image=s.image, text=rng.choice(pool[other]),
                    label='mismatch', group=s.group,
                    extra={'image_id': s.extra['image_id'],
                           'caption_of': other}))
        out[name] = rows
    stats = write_cls_dataset(out, out_dir, CLASSES)
    if missing:
        stats['left_out'] = {'missing_image': missing}
    return stats
