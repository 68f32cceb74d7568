"""Accuracy, macro F1, AUROC and per-group accuracy for classification."""
from __future__ import annotations

import logging
import re
from collections import defaultdict
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from mmfusion.registry import METRICS


@METRICS.register_module()
class MultimodalClsMetric(BaseMetric):
    """Classification metrics, overall and per question type.

    Single-label samples (``gt_label`` a ``(1,)`` class index, prediction the
    argmax of ``pred_score``):

    - ``accuracy``: share of correct predictions;
    - ``f1_macro``: mean over classes of per-class F1; a class that is in
      neither the targets nor the predictions is left out of the mean (it
      has no F1), so perfect predictions score 1.0;
    - ``auroc``: only with 2 classes, from the probability of class index 1
      (rank-based, ties counted half); left out, with a warning, when the
      targets hold a single class;
    - ``accuracy/<group>`` for every value of ``group_key`` present;
    - ``accuracy/<name>`` for every ``text_groups`` entry some sample's text
      matches (finer slices by wording, e.g. counting by colour or shape).

    Multi-label samples (``gt_label`` a ``(K,)`` multi-hot, predictions
    ``pred_score >= 0.5``): ``accuracy`` is the exact-match ratio,
    ``f1_macro`` the mean per-label F1 (same rule for absent labels), groups
    as above, no ``auroc``.

    All values are floats in [0, 1]. Names carry no prefix unless ``prefix``
    is given (``default_prefix`` is None).

    Args:
        collect_device: where results are gathered in distributed runs.
        prefix: optional prefix of the metric names (``prefix/accuracy``).
        group_key: data-sample key whose values define the groups; None
            disables per-group accuracy.
        text_groups: group name -> regular expression searched
            (``re.search``) in each sample's ``text``; a sample can be in
            several. Names must differ from ``group_key``'s values.
    """

    default_prefix: Optional[str] = None

    def __init__(self, collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 group_key: Optional[str] = 'question_type',
                 text_groups: Optional[Dict[str, str]] = None) -> None:
        # BaseMetric warns about a missing prefix; unprefixed names are the
        # intent here, so give it a placeholder and clear it afterwards.
        super().__init__(collect_device=collect_device,
                         prefix=prefix or 'unprefixed')
        self.prefix = prefix
        self.group_key = group_key
        self.text_groups = {}
        for name, pattern in (text_groups or {}).items():
            try:
                self.text_groups[str(name)] = re.compile(pattern)
            except (re.error, TypeError) as e:
                raise ValueError(f'MultimodalClsMetric text_groups[{name!r}]'
                                 f': {pattern!r} is not a regular '
                                 f'expression ({e})') from e

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Keep each sample's scores, target and group (as numpy/str).

        Args:
            data_batch: the batch from the dataloader (unused).
            data_samples: the model's outputs as dicts (``to_dict()`` of the
                data samples), each with ``pred_score`` ``(K,)``,
                ``gt_label`` and optionally the group key.
        """
        for sample in data_samples:
            if hasattr(sample, 'to_dict'):
                sample = sample.to_dict()
            score = _to_numpy(sample['pred_score']).astype(np.float64)
            score = score.reshape(-1)
            gt = _to_numpy(sample['gt_label']).reshape(-1)
            group = sample.get(self.group_key) if self.group_key else None
            text = sample.get('text')
            self.results.append({
                'score': score,
                'gt': gt,
                'group': None if group is None else str(group),
                'text_groups': [] if not isinstance(text, str) else [
                    name for name, rx in self.text_groups.items()
                    if rx.search(text)],
            })

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """The metrics over all processed samples (see class docstring)."""
        if not results:
            raise ValueError('MultimodalClsMetric got no samples to evaluate')
        scores = np.stack([r['score'] for r in results])  # (N, K)
        num_classes = scores.shape[1]
        multi = [r['gt'].size != 1 for r in results]
        if any(multi) and not all(multi):
            raise ValueError('MultimodalClsMetric got both single-label '
                             '(one index) and multi-label (multi-hot) '
                             'gt_label values in one evaluation')
        if all(multi):
            gts = np.stack([r['gt'] for r in results]).astype(np.float64)
            if gts.shape != scores.shape:
                raise ValueError(
                    f'multi-label gt_label shape {gts.shape[1:]} does not '
                    f'match pred_score shape {scores.shape[1:]}')
            truth = gts >= 0.5
            pred = scores >= 0.5
            correct = (pred == truth).all(axis=1)
            metrics = {'accuracy': float(correct.mean()),
                       'f1_macro': _macro_f1(truth, pred)}
        else:
            gt = np.array([int(r['gt'][0]) for r in results])
            pred_idx = scores.argmax(axis=1)
            correct = pred_idx == gt
            eye = np.eye(num_classes, dtype=bool)
            metrics = {'accuracy': float(correct.mean()),
                       'f1_macro': _macro_f1(eye[gt], eye[pred_idx])}
            if num_classes == 2:
                positive = gt == 1
                if positive.all() or not positive.any():
                    print_log(
                        'MultimodalClsMetric: auroc is undefined when every '
                        'target is the same class; skipped',
                        logger='current', level=logging.WARNING)
                else:
                    metrics['auroc'] = binary_auroc(scores[:, 1], positive)

        by_group: Dict[str, List[bool]] = defaultdict(list)
        by_text: Dict[str, List[bool]] = defaultdict(list)
        for r, ok in zip(results, correct):
            if r['group'] is not None:
                by_group[r['group']].append(bool(ok))
            for name in r['text_groups']:
                by_text[name].append(bool(ok))
        clash = sorted(set(by_text) & set(by_group))
        if clash:
            raise ValueError(f'MultimodalClsMetric: text_groups {clash} '
                             f'are also values of {self.group_key!r}; '
                             'rename them')
        by_group.update(by_text)
        for group in sorted(by_group):
            metrics[f'accuracy/{group}'] = float(np.mean(by_group[group]))
        return metrics


def binary_auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve by the Mann-Whitney U statistic.

    Equals the chance that a random positive scores above a random negative,
    a tie counting one half. Ranks of tied scores are averaged.

    Args:
        scores: ``(N,)`` scores, higher meaning more positive.
        positive: ``(N,)`` bool targets with both classes present.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    positive = np.asarray(positive, dtype=bool).reshape(-1)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError('AUROC needs at least one positive and one negative')
    _, inverse, counts = np.unique(scores, return_inverse=True,
                                   return_counts=True)
    # 1-based ranks: a tie group fills ranks end-count+1 .. end; average them.
    ends = np.cumsum(counts)
    ranks = (ends - (counts - 1) / 2.0)[inverse]
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _macro_f1(truth: np.ndarray, pred: np.ndarray) -> float:
    """Mean per-column F1 of ``(N, K)`` bool arrays, skipping empty columns.

    A column with no positive target and no positive prediction has no F1
    (0/0) and is left out; with no column left the score is 1.0 (nothing to
    get wrong).
    """
    tp = (truth & pred).sum(axis=0).astype(np.float64)
    fp = (~truth & pred).sum(axis=0)
    fn = (truth & ~pred).sum(axis=0)
    denom = 2 * tp + fp + fn
    used = denom > 0
    if not used.any():
        return 1.0
    return float(np.mean(2 * tp[used] / denom[used]))


def _to_numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)
