"""A CSV/TSV table of (image, text, label) -> classification jsonl.

The commonest way people keep their own data: a spreadsheet with one row
per sample, e.g.::

    file,caption,category
    photos/0001.jpg,a dog on a sofa,indoor
    photos/0002.jpg,"a beach, at noon",outdoor

The columns are chosen by name (or 0-based index with ``header=False``);
image paths are relative to ``image_root`` (default: the CSV's folder).
Splits come from a split column (values ``train``/``val``/``test``) or are
drawn by image with a fixed seed.
"""
from __future__ import annotations

import csv
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

from .cls_writer import SPLITS, ClsSample, split_groups, write_cls_dataset

#: Spellings of a tab accepted by ``delimiter``.
TAB_NAMES = ('\\t', 'tab', 'TAB', '\t')


def _column(header: Optional[List[str]], spec: Union[str, int, None],
            what: str, path: str) -> Optional[int]:
    if spec is None or spec == '':
        return None
    if header is None:
        try:
            return int(spec)
        except ValueError:
            raise ValueError(f'{what} column {spec!r}: without a header '
                             'row, columns are 0-based numbers') from None
    if spec in header:
        return header.index(spec)
    raise ValueError(f'{path}: no {what} column {spec!r}; the header has '
                     f'{header}. Choose it with --{what}-col NAME.')


def csv_to_cls(src: str, out_dir: str, image_col: Union[str, int] = 'image',
               text_col: Union[str, int, None] = 'text',
               label_col: Union[str, int] = 'label', delimiter: str = ',',
               image_root: Optional[str] = None,
               split_col: Union[str, int, None] = None,
               val_fraction: float = 0.1, test_fraction: float = 0.1,
               seed: int = 0, label_sep: Optional[str] = None,
               classes: Optional[Sequence[str]] = None, header: bool = True,
               skip_missing: bool = False) -> Dict[str, object]:
    """Convert the table ``src`` into ``out_dir`` (see module docstring).

    Args:
        src: the CSV (or TSV) file.
        out_dir: output folder (``classes.txt``, ``<split>.jsonl``).
        image_col, text_col, label_col: column names (or indices without a
            header); ``text_col=None`` writes samples without text.
        delimiter: the field separator (``'\\t'`` or ``'tab'`` for TSV).
        image_root: folder the image paths are relative to.
        split_col: a column of split names; without it, images are split by
            ``val_fraction``/``test_fraction`` with ``seed``.
        label_sep: split labels on it for multi-label data (``'|'``).
        classes: class names in index order (default: sorted labels).
        header: whether the first row names the columns.
        skip_missing: leave out rows whose image is missing (counted).

    Raises:
        ValueError: a missing column, an empty label or image, a missing
            image, an unknown split; the message names the file and line.
    """
    if delimiter in TAB_NAMES:
        delimiter = '\t'
    if len(delimiter) != 1:
        raise ValueError(f'delimiter must be one character, got '
                         f'{delimiter!r}')
    if not osp.isfile(src):
        raise FileNotFoundError(f'{src} does not exist')
    root = image_root if image_root is not None else osp.dirname(
        osp.abspath(src))
    samples: List[ClsSample] = []
    by_split: Dict[str, List[ClsSample]] = {s: [] for s in SPLITS}
    missing = 0
    with open(src, newline='', encoding='utf-8-sig') as f:
        reader = csv.reader(f, delimiter=delimiter)
        names = next(reader, None) if header else None
        if header and names is None:
            raise ValueError(f'{src} is empty')
        names = [n.strip() for n in names] if names is not None else None
        i_img = _column(names, image_col, 'image', src)
        i_txt = _column(names, text_col, 'text', src)
        i_lab = _column(names, label_col, 'label', src)
        i_split = _column(names, split_col, 'split', src)
        for row in reader:
            where = f'{src}:{reader.line_num}'
            if not any(cell.strip() for cell in row):
                continue
            needed = max(i for i in (i_img, i_txt, i_lab, i_split)
                         if i is not None)
            if len(row) <= needed:
                raise ValueError(f'{where}: {len(row)} fields, expected at '
                                 f'least {needed + 1} (is the delimiter '
                                 f'{delimiter!r} right?)')
            image = row[i_img].strip()
            if not image:
                raise ValueError(f'{where}: empty image path')
            path = image if osp.isabs(image) else osp.normpath(
                osp.join(root, image))
            if not osp.isfile(path):
                if skip_missing:
                    missing += 1
                    continue
                raise ValueError(f'{where}: image {path} not found (paths '
                                 'are relative to --image-root, default the '
                                 "CSV's folder; --skip-missing leaves such "
                                 'rows out)')
            text = row[i_txt].strip() if i_txt is not None else ''
            raw = row[i_lab].strip()
            labels = [v.strip() for v in raw.split(label_sep)] \
                if label_sep else [raw]
            labels = [v for v in labels if v]
            if not labels:
                raise ValueError(f'{where}: empty label')
            sample = ClsSample(image=path, text=text or None,
                               label=labels if label_sep else labels[0])
            if i_split is not None:
                split = row[i_split].strip().lower()
                split = {'dev': 'val', 'valid': 'val',
                         'validation': 'val'}.get(split, split)
                if split not in by_split:
                    raise ValueError(f'{where}: split {row[i_split]!r} is '
                                     f'not one of {SPLITS}')
                by_split[split].append(sample)
            else:
                samples.append(sample)
    splits = by_split if i_split is not None else split_groups(
        samples, val_fraction, test_fraction, seed)
    stats = write_cls_dataset(splits, out_dir, classes)
    if missing:
        stats['left_out'] = {'missing_image': missing}
    return stats
