"""Tiny stand-ins for the data of experiments that train on users' own files
(not generated like the shapes benchmark), written where the experiment's
``data_root`` points, so every experiment's pipeline can run in tests."""
from __future__ import annotations

import json
from pathlib import Path

from PIL import Image


def tiny_cls_dataset(root: Path, n: int = 8) -> Path:
    """``classes.txt`` + ``train/val/test.jsonl`` + n images, as the
    ``*_to_cls`` converters write them."""
    root = Path(root)
    (root / 'own_cls_images').mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        colour = (255, 0, 0) if i % 2 else (0, 0, 255)
        path = root / 'own_cls_images' / f'{i}.png'
        Image.new('RGB', (40 + i, 30), colour).save(path)
        lines.append(json.dumps({
            'image': f'own_cls_images/{i}.png', 'text': 'is it red?',
            'label': 'yes' if i % 2 else 'no'}))
    for split in ('train', 'val', 'test'):
        (root / f'{split}.jsonl').write_text('\n'.join(lines) + '\n')
    (root / 'classes.txt').write_text('no\nyes\n')
    return root


#: experiment name -> what writes its data into ``data_root``.
EXPERIMENT_DATA = {'cls_custom': tiny_cls_dataset}


def tiny_refseg_dataset(root: Path, n: int = 4) -> Path:
    """``refseg_train2017.jsonl`` + n images and masks, as
    ``tools/dataset_converters/yolo_to_refseg.py`` writes them for
    ``seg_coco128`` (two phrases on the first image)."""
    import numpy as np
    root = Path(root)
    (root / 'own_refseg_images').mkdir(parents=True, exist_ok=True)
    (root / 'masks' / 'refseg_train2017').mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        w, h = 48 + 8 * i, 40
        Image.new('RGB', (w, h), (30 * i, 90, 200)).save(
            root / 'own_refseg_images' / f'{i}.jpg')
        for phrase in (('dog', 'person') if i == 0 else ('dog',)):
            mask = np.zeros((h, w), np.uint8)
            mask[5:20, 4 + i:30] = 1
            rel = f'masks/refseg_train2017/{i}_{phrase}.png'
            Image.fromarray(mask).save(root / rel)
            lines.append(json.dumps({'image': f'own_refseg_images/{i}.jpg',
                                     'text': phrase, 'mask': rel}))
    (root / 'refseg_train2017.jsonl').write_text('\n'.join(lines) + '\n')
    return root


EXPERIMENT_DATA['seg_coco128'] = tiny_refseg_dataset


def tiny_grounding_dataset(root: Path, n: int = 4) -> Path:
    """``train.jsonl`` (ODVG, one negative per image) + n images, as
    ``tools/dataset_converters/yolo_to_grounding.py`` writes them for
    ``det_coco128``."""
    root = Path(root)
    (root / 'own_det_images').mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        w, h = 64 + 8 * i, 48
        Image.new('RGB', (w, h), (30 * i, 90, 200)).save(
            root / 'own_det_images' / f'{i}.jpg')
        lines.append(json.dumps({
            'filename': f'own_det_images/{i}.jpg', 'height': h, 'width': w,
            'grounding': {
                'caption': 'dog.',
                'regions': [{'bbox': [4, 5, 30 + i, 40], 'phrase': 'dog'}],
                'negatives': ['cat']}}))
    (root / 'train.jsonl').write_text('\n'.join(lines) + '\n')
    return root


EXPERIMENT_DATA['det_coco128'] = tiny_grounding_dataset


def prepare_experiment_data(name: str, data_root: Path) -> None:
    """Write the stand-in data of experiment ``name`` (if it needs any)."""
    make = EXPERIMENT_DATA.get(name)
    if make is not None:
        make(data_root)


def shapes_overrides(name: str, tiny_shapes) -> list:
    """The tiny shapes-generator overrides, for experiments that generate
    the shapes benchmark (none for those reading users' files)."""
    return [] if name in EXPERIMENT_DATA else list(tiny_shapes)
