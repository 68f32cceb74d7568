"""Write referring-segmentation samples: one mask PNG and jsonl line each."""
from __future__ import annotations

import json
import os
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Dict, Iterable, Tuple

import numpy as np
from PIL import Image

#: Mask values of the format (see :class:`RefSegDataset`).
BACKGROUND, REFERRED, IGNORE = 0, 1, 255


@dataclass
class RefSegImage:
    """One image and the mask of each of its phrases.

    Attributes:
        path: the image file.
        width, height: image size in pixels.
        masks: phrase -> ``(height, width)`` uint8 mask of 0 (background),
            1 (referred) and 255 (ignore), in the order to write them.
    """

    path: str
    width: int
    height: int
    masks: Dict[str, np.ndarray] = field(default_factory=dict)


def _slug(text: str) -> str:
    return re.sub(r'[^0-9a-zA-Z]+', '_', text).strip('_').lower() or 'phrase'


def mask_dir_for(out_file: str) -> str:
    """Masks of ``out_file`` go to ``masks/<its stem>/`` beside it."""
    stem = osp.splitext(osp.basename(out_file))[0]
    return osp.join(osp.dirname(osp.abspath(out_file)), 'masks', stem)


def write_refseg(images: Iterable[RefSegImage], out_file: str
                 ) -> Dict[str, int]:
    """Write every phrase's mask and its ``{"image", "text", "mask"}`` line.

    Masks are single-channel PNGs in ``masks/<out_file stem>/``, named
    ``<image stem>_<phrase>.png`` (a counter makes repeated names unique);
    paths in the jsonl file are relative to its folder (images are not
    copied). The file is written to a temporary name and renamed, so a
    failed conversion leaves no half file.

    Returns:
        Counts: ``images`` (with at least one phrase),
        ``images_without_phrases``, ``samples``.
    """
    out_dir = osp.dirname(osp.abspath(out_file))
    mask_dir = mask_dir_for(out_file)
    os.makedirs(mask_dir, exist_ok=True)
    used: Dict[str, int] = {}
    counts = dict(images=0, images_without_phrases=0, samples=0)
    tmp = out_file + '.tmp'
    from mmfusion.utils.progress import track
    with open(tmp, 'w', encoding='utf-8') as f:
        for image in track(images, desc='convert', unit='image'):
            if not image.masks:
                counts['images_without_phrases'] += 1
                continue
            counts['images'] += 1
            stem = _slug(osp.splitext(osp.basename(image.path))[0])
            for phrase, mask in image.masks.items():
                mask = np.asarray(mask, dtype=np.uint8)
                if mask.shape != (image.height, image.width):
                    raise ValueError(
                        f'mask of {phrase!r} for {image.path} is '
                        f'{mask.shape}, expected '
                        f'{(image.height, image.width)}')
                name = f'{stem}_{_slug(phrase)}'
                n = used.get(name, 0)
                used[name] = n + 1
                if n:
                    name = f'{name}_{n}'
                mask_path = osp.join(mask_dir, name + '.png')
                Image.fromarray(mask).save(mask_path)
                f.write(json.dumps({
                    'image': osp.relpath(osp.abspath(image.path), out_dir),
                    'text': phrase,
                    'mask': osp.relpath(mask_path, out_dir)}) + '\n')
                counts['samples'] += 1
    os.replace(tmp, out_file)
    return counts


def union_masks(parts: Iterable[Tuple[np.ndarray, bool]], height: int,
                width: int) -> np.ndarray:
    """One phrase's mask from instance masks ``(bool mask, ignore)``: 1 on
    the referred instances, 255 on ignored ones (crowd regions) that no
    referred instance covers, 0 elsewhere."""
    out = np.zeros((height, width), dtype=np.uint8)
    ignore = np.zeros((height, width), dtype=bool)
    for mask, is_ignore in parts:
        if is_ignore:
            ignore |= mask
        else:
            out[mask] = REFERRED
    out[ignore & (out != REFERRED)] = IGNORE
    return out
