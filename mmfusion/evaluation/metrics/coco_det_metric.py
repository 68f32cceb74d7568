"""mmdet's CocoMetric with every requested key, also without predictions."""
from __future__ import annotations

import logging
from typing import Dict, List

from mmdet.evaluation.metrics import CocoMetric
from mmengine.logging import print_log

from mmfusion.registry import METRICS

#: mmdet's default ``metric_items`` of a bbox or segm metric.
DEFAULT_ITEMS = ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')


@METRICS.register_module()
class CocoDetMetric(CocoMetric):
    """mmdet's :class:`CocoMetric`, same arguments and values, except that
    an evaluation without a single prediction above the score threshold
    (an untrained or collapsed detector) reports 0 for every requested
    item instead of returning ``{}``: ``tools/test.py`` then still writes
    ``coco/bbox_mAP`` and friends, a sweep's summary has its columns, and
    ``save_best`` sees a score.
    """

    def compute_metrics(self, results: list) -> Dict[str, float]:
        metrics = super().compute_metrics(results)
        if metrics or self.format_only:
            return metrics
        items: List[str] = list(self.metric_items or DEFAULT_ITEMS)
        filled = {f'{metric}_{item}': 0.0 for metric in self.metrics
                  if metric in ('bbox', 'segm') for item in items}
        if filled:
            print_log(f'no predictions over {len(results)} images: '
                      f'{sorted(filled)} are 0', logger='current',
                      level=logging.WARNING)
        return filled
