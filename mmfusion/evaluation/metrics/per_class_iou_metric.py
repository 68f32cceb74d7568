"""mmseg's IoUMetric with per-class values in [0, 1] in the results."""
from __future__ import annotations

import logging
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.logging import print_log
from mmseg.evaluation.metrics import IoUMetric

from mmfusion.registry import METRICS


@METRICS.register_module()
class PerClassIoUMetric(IoUMetric):
    """Segmentation metrics as fractions, per class and per group.

    mmseg's :class:`IoUMetric` accumulates each class's intersection and
    union over the whole evaluation (dataset-level IoU, not a mean of
    per-image IoUs) but returns only the means, as percentages rounded to
    two decimals, and prints the per-class table. This returns, all in
    ``[0, 1]`` at full precision:

    - ``aAcc`` (pixel accuracy), ``mIoU`` and ``mAcc`` (means over the
      classes, NaN classes -- absent from both targets and predictions --
      left out), plus ``mDice``/``mFscore`` when ``iou_metrics`` asks;
    - ``IoU/<class>`` and ``Acc/<class>`` for every class with a value
      (``IoU/referred`` for the binary referring target);
    - with ``group_key`` (e.g. ``phrase_type``), ``IoU/<class>/<group>``
      for every class but the first (background) and every group value.

    Samples without ``gt_sem_seg`` (a multi-task batch whose line had no
    mask) are skipped. Names carry no prefix unless ``prefix`` is given
    (multi-task experiments prefix them with the task name).

    Args:
        ignore_index: mask value left out.
        iou_metrics: mmseg's metric names (``mIoU``, ``mDice``, ``mFscore``).
        group_key: metainfo key whose values get their own IoU; None
            disables.
        collect_device, prefix, **kwargs: as mmseg's ``IoUMetric``.
    """

    default_prefix: Optional[str] = None

    def __init__(self, ignore_index: int = 255,
                 iou_metrics: Sequence[str] = ('mIoU', ),
                 group_key: Optional[str] = 'phrase_type',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None, **kwargs) -> None:
        # BaseMetric warns about a missing prefix: unprefixed is the intent.
        super().__init__(ignore_index=ignore_index,
                         iou_metrics=list(iou_metrics),
                         collect_device=collect_device,
                         prefix=prefix or 'unprefixed', **kwargs)
        self.prefix = prefix
        self.group_key = group_key

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Per sample: the four area vectors and the group."""
        num_classes = len(self.dataset_meta['classes'])
        for sample in data_samples:
            if hasattr(sample, 'to_dict'):
                sample = sample.to_dict()
            if 'gt_sem_seg' not in sample or 'pred_sem_seg' not in sample:
                continue
            pred = sample['pred_sem_seg']['data'].squeeze()
            label = sample['gt_sem_seg']['data'].squeeze().to(pred)
            if pred.shape != label.shape:
                raise ValueError(
                    f'prediction {tuple(pred.shape)} and mask '
                    f'{tuple(label.shape)} differ in size for '
                    f'{sample.get("img_path")}: evaluation masks must be at '
                    'the original image size (load them after the Resize)')
            areas = self.intersect_and_union(pred, label, num_classes,
                                             self.ignore_index)
            group = sample.get(self.group_key) if self.group_key else None
            self.results.append((*(a.cpu() for a in areas),
                                 None if group is None else str(group)))

    def compute_metrics(self, results: List[tuple]) -> Dict[str, float]:
        """Metrics over all processed samples (see the class docstring)."""
        if not results:
            raise ValueError('PerClassIoUMetric got no sample with a mask '
                             'to evaluate')
        classes = list(self.dataset_meta['classes'])
        metrics = self._metrics(results, classes)
        if self.group_key:
            by_group = defaultdict(list)
            for r in results:
                if r[4] is not None:
                    by_group[r[4]].append(r)
            for group in sorted(by_group):
                areas = self._areas(by_group[group])
                iou = (areas[0] / areas[1]).numpy()
                for name, value in zip(classes[1:], iou[1:]):
                    if not np.isnan(value):
                        metrics[f'IoU/{name}/{group}'] = float(value)
        return metrics

    @staticmethod
    def _areas(results: List[tuple]) -> List[torch.Tensor]:
        return [sum(r[i] for r in results).double() for i in range(4)]

    def _metrics(self, results: List[tuple],
                 classes: List[str]) -> Dict[str, float]:
        inter, union, pred, label = self._areas(results)
        ret = self.total_area_to_metrics(inter, union, pred, label,
                                         self.metrics, self.nan_to_num,
                                         self.beta)
        metrics: Dict[str, float] = {'aAcc': float(ret.pop('aAcc'))}
        for key, values in ret.items():
            values = np.asarray(values, dtype=np.float64)
            if np.isnan(values).all():
                print_log(f'PerClassIoUMetric: m{key} is undefined (no '
                          'class in targets or predictions); skipped',
                          logger='current', level=logging.WARNING)
            else:
                metrics[f'm{key}'] = float(np.nanmean(values))
            for name, value in zip(classes, values):
                if not np.isnan(value):
                    metrics[f'{key}/{name}'] = float(value)
        lines = [f'{name}: ' + ', '.join(
            f'{key} {metrics[f"{key}/{name}"]:.4f}' for key in ret
            if f'{key}/{name}' in metrics) for name in classes]
        print_log('per class results:\n  ' + '\n  '.join(lines),
                  logger='current')
        return metrics
