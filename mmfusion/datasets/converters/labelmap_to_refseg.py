"""Images + label-index PNGs + a class list -> referring segmentation."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, List, Optional

import numpy as np
from PIL import Image

from .refseg_writer import IGNORE, REFERRED, RefSegImage, write_refseg
from .yolo_to_grounding import IMAGE_SUFFIXES, read_class_names


def labelmap_refseg_images(root: str, class_names: List[str],
                           images_dir: str = 'images',
                           labels_dir: str = 'labels',
                           background_index: Optional[int] = 0,
                           ignore_index: int = IGNORE,
                           stats: Optional[dict] = None
                           ) -> Iterator[RefSegImage]:
    """The images under ``root/images_dir`` with one mask per class present
    in their label map ``root/labels_dir/<same path>.png`` (a PNG of class
    indices, the image's size): 1 where the pixel has the class, 255 where
    it has ``ignore_index``, 0 elsewhere. ``background_index`` (None for
    none) gets no phrase. Images without a label map get no phrase.

    Raises:
        ValueError: a label map of another size than its image, not
            single-channel, or with an index that names no class.
    """
    img_root = Path(root) / images_dir
    lbl_root = Path(root) / labels_dir
    for folder in (img_root, lbl_root):
        if not folder.is_dir():
            raise FileNotFoundError(
                f'{folder} not found: expected {images_dir}/*.jpg and '
                f'{labels_dir}/*.png (label-index maps, same names) under IN')
    stats = stats if stats is not None else {}
    stats.update(images_without_labels=0)
    for path in sorted(p for p in img_root.rglob('*')
                       if p.suffix.lower() in IMAGE_SUFFIXES):
        label = lbl_root / path.relative_to(img_root).with_suffix('.png')
        with Image.open(path) as im:
            width, height = im.size
        if not label.is_file():
            stats['images_without_labels'] += 1
            yield RefSegImage(str(path), width, height, {})
            continue
        with Image.open(label) as lm:
            if lm.mode not in ('L', 'P', 'I', 'I;16'):
                raise ValueError(f'{label}: mode {lm.mode}; label maps must '
                                 'be single-channel PNGs of class indices')
            if lm.size != (width, height):
                raise ValueError(f'{label}: {lm.size[0]}x{lm.size[1]} but '
                                 f'its image {path} is {width}x{height}')
            labels = np.asarray(lm).astype(np.int64)
        values = [int(v) for v in np.unique(labels)]
        bad = [v for v in values
               if v != ignore_index and not 0 <= v < len(class_names)]
        if bad:
            raise ValueError(f'{label}: indices {bad[:10]} name no class '
                             f'(the class list has {len(class_names)}; '
                             f'{ignore_index} is ignore)')
        ignore = labels == ignore_index
        masks = {}
        for v in values:
            if v == ignore_index or v == background_index:
                continue
            mask = np.zeros((height, width), dtype=np.uint8)
            mask[labels == v] = REFERRED
            mask[ignore] = IGNORE
            masks[class_names[v]] = mask
        yield RefSegImage(str(path), width, height, masks)


def labelmap_to_refseg(root: str, out_file: str,
                       classes_file: Optional[str] = None,
                       images_dir: str = 'images', labels_dir: str = 'labels',
                       background_index: Optional[int] = 0,
                       ignore_index: int = IGNORE) -> dict:
    """Convert a semantic-segmentation dataset (images + label-index PNGs +
    class list) to referring segmentation.

    One line per (image, class present but the background): the phrase is
    the class name, the mask that class's pixels (ignore-index pixels stay
    ignored). Masks go to ``masks/<out_file stem>/``; paths are relative to
    ``out_file``'s folder.

    Returns:
        Counts (images, images_without_phrases, samples,
        images_without_labels).
    """
    names = read_class_names(root, classes_file)
    stats: dict = {}
    counts = write_refseg(labelmap_refseg_images(
        root, names, images_dir, labels_dir, background_index, ignore_index,
        stats), out_file)
    return {**counts, **stats}
