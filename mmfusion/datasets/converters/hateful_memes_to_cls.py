"""Hateful Memes (jsonl with ``img``, ``text``, ``label``) -> classification.

The Hateful Memes release is a folder with ``img/`` and one jsonl file per
split, one meme a line::

    {"id": 42953, "img": "img/42953.png", "label": 0,
     "text": "its their character not their color that matters"}

``img`` is relative to the jsonl file's folder, ``label`` 0 (not hateful)
or 1 (hateful); the unlabelled test files of the first phase have no
``label``. The output is mmfusion's classification format with the classes
``not_hateful`` and ``hateful`` (index 1, so the binary ``auroc`` -- the
challenge's metric -- scores "hateful").
"""
from __future__ import annotations

import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

from .cls_writer import ClsSample, write_cls_dataset

CLASSES = ('not_hateful', 'hateful')

#: Which file becomes which split, first existing name wins.
DEFAULT_FILES: Dict[str, Tuple[str, ...]] = {
    'train': ('train.jsonl', ),
    'val': ('dev_seen.jsonl', 'dev.jsonl'),
    'test': ('test_seen.jsonl', 'test.jsonl'),
}


def read_hateful_memes(path: str, skip_missing: bool = False
                       ) -> Tuple[List[ClsSample], Dict[str, int]]:
    """Samples of one Hateful Memes jsonl file, and counts of what was left
    out (``unlabelled``, ``missing_image``).

    Raises:
        ValueError: a malformed line (file and line named), or a missing
            image unless ``skip_missing``.
    """
    base = osp.dirname(osp.abspath(path))
    samples: List[ClsSample] = []
    left_out = {'unlabelled': 0, 'missing_image': 0}
    with open(path, encoding='utf-8') as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f'{path}:{lineno}'
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f'{where}: invalid JSON ({err.msg})') \
                    from None
            if not isinstance(rec, dict) or not isinstance(
                    rec.get('img'), str):
                raise ValueError(f'{where}: expected an object with "img" '
                                 '(the image path), "text" and "label"')
            label = rec.get('label')
            if label is None:
                left_out['unlabelled'] += 1
                continue
            if label not in (0, 1, '0', '1'):
                raise ValueError(f'{where}: "label" must be 0 or 1, got '
                                 f'{label!r}')
            image = osp.normpath(osp.join(base, rec['img']))
            if not osp.isfile(image):
                if skip_missing:
                    left_out['missing_image'] += 1
                    continue
                raise ValueError(f'{where}: image {image} not found (use '
                                 '--skip-missing to leave such lines out)')
            text = rec.get('text')
            if text is not None and not isinstance(text, str):
                raise ValueError(f'{where}: "text" must be a string')
            text = text.strip() if text else None
            extra = {'id': rec['id']} if 'id' in rec else {}
            samples.append(ClsSample(image=image, text=text or None,
                                     label=CLASSES[int(label)], extra=extra))
    return samples, left_out


def hateful_memes_to_cls(src: str, out_dir: str,
                         files: Optional[Dict[str, str]] = None,
                         skip_missing: bool = False) -> Dict[str, object]:
    """Convert a Hateful Memes folder (or one of its jsonl files) into
    ``out_dir``.

    Args:
        src: the release folder (``train.jsonl``, ``dev_seen.jsonl`` or
            ``dev.jsonl``, ``test_seen.jsonl`` or ``test.jsonl``, ``img/``),
            or a single jsonl file (written as ``train``).
        out_dir: output folder (``classes.txt``, ``<split>.jsonl``).
        files: ``{split: file name in src}`` instead of the defaults.
        skip_missing: leave out lines whose image is missing (counted)
            instead of failing.

    Returns:
        Counts per split (samples, labels, lines left out).
    """
    if osp.isfile(src):
        chosen = {'train': src}
    elif osp.isdir(src):
        chosen = {}
        for split, names in (files and {k: (v, ) for k, v in files.items()}
                             or DEFAULT_FILES).items():
            for name in names:
                if osp.isfile(osp.join(src, name)):
                    chosen[split] = osp.join(src, name)
                    break
            else:
                if files:
                    raise FileNotFoundError(f'{osp.join(src, names[0])} '
                                            'not found')
        if 'train' not in chosen:
            raise FileNotFoundError(
                f'{src} has no train.jsonl: expected the Hateful Memes '
                'layout (train.jsonl, dev_seen.jsonl, test_seen.jsonl, img/)')
    else:
        raise FileNotFoundError(f'{src} does not exist')
    splits, left = {}, {}
    for split, path in chosen.items():
        splits[split], left[split] = read_hateful_memes(path, skip_missing)
    stats = write_cls_dataset(splits, out_dir, CLASSES)
    for split, counts in left.items():
        if isinstance(stats.get(split), dict):
            stats[split]['source'] = chosen[split]
            stats[split]['left_out'] = counts
        elif any(counts.values()):
            stats[split] = {'samples': 0, 'source': chosen[split],
                            'left_out': counts}
    return stats


def parse_files(spec: Optional[Sequence[str]]) -> Optional[Dict[str, str]]:
    """``['train=train.jsonl', 'val=dev_unseen.jsonl']`` -> a dict."""
    if not spec:
        return None
    out = {}
    for item in spec:
        if '=' not in item:
            raise ValueError(f'--files takes SPLIT=FILE, got {item!r}')
        split, name = item.split('=', 1)
        out[split.strip()] = name.strip()
    return out
