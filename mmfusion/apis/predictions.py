"""Task-shaped predictions: a predicted data sample as plain data.

One function per task, chosen by the fields the sample holds (the first
that matches, in :data:`PREDICTION_CONVERTERS` order):

- ``pred_instances`` (detection, mmdet's ``DetDataSample``)::

      {'task': 'detection', 'bboxes': [[x1, y1, x2, y2], ...],
       'scores': [...], 'labels': [...], 'label_names': [...]}

- ``pred_sem_seg`` (segmentation, mmseg's ``SegDataSample``)::

      {'task': 'segmentation', 'mask': uint8 array (H, W),
       'classes_present': [...], 'pixels': {name: count}}

- ``pred_score``/``pred_label`` (classification)::

      {'task': 'classification', 'scores': [...], 'pred_label': 1,
       'pred_class': 'yes', 'pred_score': 0.93}

  multi-label: ``pred_labels``/``pred_classes`` lists instead of one label.

Every prediction also has ``text``, ``img_path`` (None for an array) and,
when the sample has them, ``attention_map`` (the text's attention over the
image positions, ``(H, W)`` nested lists, mean over heads and tokens),
``tokens`` and ``unknown_tokens`` (words outside the vocabulary).

A new task registers its converter with :func:`register_prediction_converter`.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.structures import BaseDataElement

Converter = Callable[[BaseDataElement, Optional[Sequence[str]]], Dict]

#: ``(field that identifies the task, converter)``, tried in order.
PREDICTION_CONVERTERS: List[Tuple[str, Converter]] = []


def register_prediction_converter(field: str, first: bool = True
                                  ) -> Callable[[Converter], Converter]:
    """Decorator: ``fn(sample, classes) -> dict`` for samples with ``field``.

    ``first`` puts it before the converters already registered (a more
    specific task wins over classification).
    """
    def wrap(fn: Converter) -> Converter:
        entry = (field, fn)
        if first:
            PREDICTION_CONVERTERS.insert(0, entry)
        else:
            PREDICTION_CONVERTERS.append(entry)
        return fn
    return wrap


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _name(i: int, classes: Optional[Sequence[str]]) -> str:
    if classes is not None and 0 <= i < len(classes):
        return str(classes[i])
    return str(i)


@register_prediction_converter('pred_score', first=False)
def classification_prediction(sample: BaseDataElement,
                              classes: Optional[Sequence[str]]) -> Dict:
    scores = _np(sample.pred_score).reshape(-1).astype(float)
    labels = _np(sample.pred_label).reshape(-1)
    out: Dict = {'task': 'classification',
                 'scores': [round(float(s), 6) for s in scores]}
    if labels.size == scores.size > 1:  # multi-label: 0/1 per class
        on = [int(i) for i in np.flatnonzero(labels > 0)]
        out.update(pred_labels=on, pred_classes=[_name(i, classes)
                                                 for i in on])
    else:
        pred = int(labels[0])
        out.update(pred_label=pred, pred_class=_name(pred, classes),
                   pred_score=round(float(scores[pred]), 6))
    if classes is not None:
        out['classes'] = [str(c) for c in classes]
    return out


@register_prediction_converter('pred_sem_seg')
def segmentation_prediction(sample: BaseDataElement,
                            classes: Optional[Sequence[str]]) -> Dict:
    data = _np(getattr(sample.pred_sem_seg, 'data', sample.pred_sem_seg))
    mask = data.reshape(-1, *data.shape[-2:])[0].astype(np.uint8)
    values, counts = np.unique(mask, return_counts=True)
    return {'task': 'segmentation', 'mask': mask,
            'classes_present': [_name(int(v), classes) for v in values
                                if int(v) != 255],
            'pixels': {_name(int(v), classes): int(c)
                       for v, c in zip(values, counts)}}


@register_prediction_converter('pred_instances')
def detection_prediction(sample: BaseDataElement,
                         classes: Optional[Sequence[str]]) -> Dict:
    inst = sample.pred_instances
    bboxes = inst.get('bboxes')
    bboxes = _np(getattr(bboxes, 'tensor', bboxes)).reshape(-1, 4) \
        if bboxes is not None else np.zeros((0, 4))
    scores = _np(inst.scores).reshape(-1) if 'scores' in inst else \
        np.ones(len(bboxes))
    labels = _np(inst.labels).reshape(-1).astype(int) if 'labels' in inst \
        else np.zeros(len(bboxes), dtype=int)
    return {'task': 'detection',
            'bboxes': [[round(float(v), 2) for v in b] for b in bboxes],
            'scores': [round(float(s), 6) for s in scores],
            'labels': [int(v) for v in labels],
            'label_names': [_name(int(v), classes) for v in labels]}


def sample_to_prediction(sample: BaseDataElement,
                         classes: Optional[Sequence[str]] = None) -> Dict:
    """The task-shaped dict of a predicted sample (see the module doc)."""
    for field, convert in PREDICTION_CONVERTERS:
        if field in sample:
            out = convert(sample, classes)
            break
    else:
        raise ValueError('the data sample holds no prediction (none of '
                         f'{[f for f, _ in PREDICTION_CONVERTERS]}); fields: '
                         f'{list(sample.keys())}')
    meta = sample.metainfo
    out['text'] = meta.get('text')
    out['img_path'] = meta.get('img_path')
    if meta.get('text_tokens') is not None:
        out['tokens'] = list(meta['text_tokens'])
        out['unknown_tokens'] = list(meta.get('unknown_tokens', []))
    if 'attention' in sample and meta.get('attention_hw') is not None:
        from mmfusion.visualization.attention import attention_grid
        tokens = meta.get('text_tokens')
        grid = attention_grid(sample.attention, meta['attention_hw'],
                              num_tokens=len(tokens) if tokens else None)
        out['attention_map'] = [[round(float(v), 6) for v in row]
                                for row in grid]
    return out


def jsonable(prediction: Dict) -> Dict:
    """``prediction`` with arrays as lists (for ``json.dump``)."""
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v)
            for k, v in prediction.items()}


def dumps_prediction(prediction: Dict) -> str:
    """Indented JSON with every list of plain values on one line (scores,
    boxes, tokens, the rows of an attention map or mask)."""
    import json
    import re
    text = json.dumps(jsonable(prediction), indent=2)
    item = r'(?:-?[\d.eE+-]+|"(?:[^"\\]|\\.)*"|true|false|null)'
    flat = re.compile(r'\[\s*(' + item + r'(?:,\s*' + item + r')*)\s*\]')
    return flat.sub(lambda m: '[' + ', '.join(re.findall(item, m.group(1)))
                    + ']', text)
