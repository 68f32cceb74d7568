"""CocoDetMetric: mmdet's CocoMetric values, and zeros (not ``{}``) when
nothing was predicted."""
from __future__ import annotations

import pytest
import torch
from mmengine.registry import init_default_scope

from mmfusion.registry import METRICS

BOX = [2.0, 3.0, 12.0, 15.0]


def _samples(predict: bool):
    samples = []
    for i in range(2):
        n = 1 if predict else 0
        samples.append({
            'img_id': i, 'ori_shape': (20, 20),
            'instances': [{'bbox': BOX, 'bbox_label': 0, 'ignore_flag': 0}],
            'pred_instances': {
                'bboxes': torch.tensor([BOX] * n).reshape(n, 4),
                'scores': torch.ones(n), 'labels': torch.zeros(n).long()},
        })
    return samples


def _evaluate(predict: bool, **kwargs):
    init_default_scope('mmfusion')
    metric = METRICS.build(dict(type='CocoDetMetric', metric='bbox',
                                **kwargs))
    metric.dataset_meta = {'classes': ('match', )}
    metric.process({}, _samples(predict))
    return metric.evaluate(2)


def test_values_are_mmdets():
    out = _evaluate(True, metric_items=['mAP', 'mAP_50', 'mAP_75'])
    assert out == pytest.approx({'coco/bbox_mAP': 1.0,
                                 'coco/bbox_mAP_50': 1.0,
                                 'coco/bbox_mAP_75': 1.0})


@pytest.mark.parametrize('items', [['mAP', 'mAP_50', 'mAP_75'], None])
def test_no_predictions_give_zeros(items):
    out = _evaluate(False, metric_items=items)
    names = items or ['mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l']
    assert out == {f'coco/bbox_{n}': 0.0 for n in names}
