"""Write classification data in mmfusion's jsonl format (shared by the
``*_to_cls`` converters).

The output folder holds ``classes.txt`` (one class name a line, in index
order) and one ``<split>.jsonl`` per split, one sample a line::

    {"image": "../photos/0001.jpg", "text": "is there a dog?", "label": "yes"}

with ``image`` relative to the output folder (nothing is copied), as
:class:`~mmfusion.datasets.MultimodalClsDataset` reads it.
"""
from __future__ import annotations

import json
import os
import os.path as osp
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import (Dict, Iterable, List, Optional, Sequence, Tuple, Union)

SPLITS = ('train', 'val', 'test')


@dataclass
class ClsSample:
    """One (image, text, label) sample before it is written.

    Attributes:
        image: the image file (absolute, or relative to the working folder).
        text: the text, or None for a sample without text.
        label: a class name, or a list of class names (multi-label).
        group: samples of one group go to the same split (default: the
            image, so an image never appears in two splits).
        extra: more keys for the line (e.g. ``question_type``).
    """

    image: str
    text: Optional[str]
    label: Union[str, List[str]]
    group: Optional[str] = None
    extra: Dict[str, object] = field(default_factory=dict)


def split_groups(samples: Sequence[ClsSample], val_fraction: float,
                 test_fraction: float, seed: int = 0
                 ) -> Dict[str, List[ClsSample]]:
    """Samples by split, whole groups at a time, deterministically.

    Groups (default: images) are shuffled with ``seed`` and cut into
    ``test_fraction``, ``val_fraction`` and the rest (train); each split with
    a positive fraction gets at least one group when there are enough.
    """
    for name, frac in (('val_fraction', val_fraction),
                       ('test_fraction', test_fraction)):
        if not 0 <= frac < 1:
            raise ValueError(f'{name} must be in [0, 1), got {frac}')
    if val_fraction + test_fraction >= 1:
        raise ValueError('val_fraction + test_fraction must leave samples '
                         f'for training, got {val_fraction + test_fraction}')
    groups: Dict[str, List[ClsSample]] = {}
    for s in samples:
        groups.setdefault(s.group or osp.abspath(s.image), []).append(s)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    n = len(keys)
    n_test = int(round(n * test_fraction))
    n_val = int(round(n * val_fraction))
    if test_fraction > 0 and n_test == 0 and n >= 3:
        n_test = 1
    if val_fraction > 0 and n_val == 0 and n - n_test >= 2:
        n_val = 1
    cuts = {'test': keys[:n_test], 'val': keys[n_test:n_test + n_val],
            'train': keys[n_test + n_val:]}
    return {split: [s for k in ks for s in groups[k]]
            for split, ks in cuts.items()}


def write_cls_dataset(splits: Dict[str, Iterable[ClsSample]], out_dir: str,
                      classes: Optional[Sequence[str]] = None
                      ) -> Dict[str, object]:
    """Write ``classes.txt`` and ``<split>.jsonl`` files into ``out_dir``.

    Args:
        splits: samples by split name; empty splits are not written.
        out_dir: the output folder (created).
        classes: class names in index order; default: every label seen,
            sorted.

    Returns:
        Counts: ``{"classes": [...], "<split>": {"samples": N, "labels":
        {name: n}}}``.

    Raises:
        ValueError: a label outside ``classes``, or an empty text.
    """
    os.makedirs(out_dir, exist_ok=True)
    splits = {k: list(v) for k, v in splits.items()}
    seen = sorted({lab for ss in splits.values() for s in ss
                   for lab in _labels(s.label)})
    classes = list(classes) if classes is not None else seen
    unknown = sorted(set(seen) - set(classes))
    if unknown:
        raise ValueError(f'labels {unknown} are not in the classes '
                         f'{classes}')
    with open(osp.join(out_dir, 'classes.txt'), 'w', encoding='utf-8') as f:
        f.write(''.join(f'{c}\n' for c in classes))
    stats: Dict[str, object] = {'classes': classes}
    root = osp.abspath(out_dir)
    for split, samples in splits.items():
        if not samples:
            continue
        path = osp.join(out_dir, f'{split}.jsonl')
        counts: Counter = Counter()
        with open(path + '.tmp', 'w', encoding='utf-8') as f:
            for s in samples:
                if s.text is not None and not s.text.strip():
                    raise ValueError(f'{s.image}: empty text; use None for '
                                     'a sample without text')
                rec = {'image': osp.relpath(osp.abspath(s.image), root),
                       'text': s.text, 'label': s.label, **s.extra}
                f.write(json.dumps(rec, ensure_ascii=False) + '\n')
                counts.update(_labels(s.label))
        os.replace(path + '.tmp', path)
        stats[split] = {'samples': len(samples), 'labels': dict(
            sorted(counts.items()))}
    return stats


def _labels(label: Union[str, List[str]]) -> Tuple[str, ...]:
    return tuple(label) if isinstance(label, (list, tuple)) else (label, )
