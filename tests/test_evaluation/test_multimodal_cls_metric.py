"""MultimodalClsMetric: accuracy, macro F1, AUROC, groups, multi-label."""
from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope

from mmfusion.evaluation.metrics.multimodal_cls_metric import binary_auroc
from mmfusion.registry import METRICS
from mmfusion.structures import MultimodalDataSample


def build_metric(**kwargs):
    init_default_scope('mmfusion')
    return METRICS.build(dict(type='MultimodalClsMetric', **kwargs))


def samples(scores, labels, groups=None):
    """Data-sample dicts as the model's outputs reach ``process``."""
    out = []
    for i, (score, label) in enumerate(zip(scores, labels)):
        sample = MultimodalDataSample(
            metainfo={} if groups is None else {'question_type': groups[i]})
        sample.pred_score = torch.tensor(score, dtype=torch.float32)
        if isinstance(label, int):
            sample.gt_label = torch.tensor([label])
        else:
            sample.gt_label = torch.tensor(label, dtype=torch.float32)
        out.append(sample.to_dict())
    return out


def evaluate(metric, data_samples, batch=3):
    for i in range(0, len(data_samples), batch):
        metric.process(None, data_samples[i:i + batch])
    return metric.evaluate(len(data_samples))


def test_perfect():
    metric = build_metric()
    scores = [[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]]
    result = evaluate(metric, samples(scores, [0, 1, 1, 0],
                                      ['colour', 'count', 'colour', 'shape']))
    assert result == {'accuracy': 1.0, 'f1_macro': 1.0, 'auroc': 1.0,
                      'accuracy/colour': 1.0, 'accuracy/count': 1.0,
                      'accuracy/shape': 1.0}
    assert metric.prefix is None  # names are not prefixed


def brute_force_auroc(scores, positive):
    pairs = [(p, n) for p, n in itertools.product(
        [s for s, y in zip(scores, positive) if y],
        [s for s, y in zip(scores, positive) if not y])]
    return sum(1.0 if p > n else 0.5 if p == n else 0.0
               for p, n in pairs) / len(pairs)


def test_auroc_with_ties():
    scores = [0.1, 0.4, 0.4, 0.8, 0.4, 0.9]
    positive = [False, False, True, True, True, False]
    # Hand count: positives 0.4, 0.8, 0.4 against negatives 0.1, 0.4, 0.9:
    # 0.4 -> 1 + 0.5 + 0 = 1.5 (twice), 0.8 -> 1 + 1 + 0 = 2: total 5 of 9.
    assert binary_auroc(np.array(scores), np.array(positive)) == \
        pytest.approx(5 / 9)
    assert brute_force_auroc(scores, positive) == pytest.approx(5 / 9)
    rng = np.random.default_rng(0)
    for _ in range(20):
        s = rng.integers(0, 5, size=12) / 4.0  # many ties
        y = rng.random(12) < 0.5
        if y.all() or not y.any():
            continue
        assert binary_auroc(s, y) == pytest.approx(brute_force_auroc(s, y))


def test_known_case_and_groups():
    # p(yes): correct, correct, wrong, wrong(tie at 0.5 -> argmax 'no').
    p_yes = [0.9, 0.2, 0.3, 0.5]
    labels = [1, 0, 1, 1]
    metric = build_metric()
    result = evaluate(metric, samples([[1 - p, p] for p in p_yes], labels,
                                      ['a', 'a', 'b', 'b']))
    assert result['accuracy'] == pytest.approx(0.5)
    # class 'no': tp 1, fp 2, fn 0 -> 2/4; class 'yes': tp 1, fp 0, fn 2
    # -> 2/4; macro 0.5.
    assert result['f1_macro'] == pytest.approx(0.5)
    # positives 0.9, 0.3, 0.5 vs negative 0.2: all above -> 1.0
    assert result['auroc'] == pytest.approx(1.0)
    assert result['accuracy/a'] == 1.0 and result['accuracy/b'] == 0.0
    assert all(0.0 <= v <= 1.0 for v in result.values())


def test_three_classes_no_auroc_and_no_groups():
    metric = build_metric(group_key=None)
    scores = np.eye(3)[[0, 1, 2, 1]].tolist()
    result = evaluate(metric, samples(scores, [0, 1, 2, 2],
                                      ['x', 'x', 'y', 'y']))
    assert set(result) == {'accuracy', 'f1_macro'}
    assert result['accuracy'] == pytest.approx(0.75)
    # per class F1: 1, 2/3 (tp1 fp1), 2/3 (tp1 fn1)
    assert result['f1_macro'] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)


def test_single_class_targets_skip_auroc():
    metric = build_metric()
    result = evaluate(metric, samples([[0.2, 0.8], [0.4, 0.6]], [1, 1]))
    assert 'auroc' not in result and result['accuracy'] == 1.0
    assert result['f1_macro'] == 1.0  # class 'no' absent everywhere


def test_prefix():
    metric = build_metric(prefix='val')
    result = evaluate(metric, samples([[0.2, 0.8], [0.6, 0.4]], [1, 0],
                                      ['g', 'g']))
    assert set(result) == {'val/accuracy', 'val/f1_macro', 'val/auroc',
                           'val/accuracy/g'}


def test_multi_label():
    metric = build_metric()
    scores = [[0.9, 0.1, 0.7], [0.2, 0.6, 0.1], [0.8, 0.8, 0.2]]
    gts = [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
    result = evaluate(metric, samples(scores, gts, ['p', 'q', 'q']))
    # exact match: yes, yes, no (label 1 over-predicted)
    assert result['accuracy'] == pytest.approx(2 / 3)
    # label0: tp2 -> 1; label1: tp1 fp1 -> 2/3; label2: tp1 -> 1
    assert result['f1_macro'] == pytest.approx((1 + 2 / 3 + 1) / 3)
    assert 'auroc' not in result
    assert result['accuracy/p'] == 1.0
    assert result['accuracy/q'] == pytest.approx(0.5)
    perfect = build_metric()
    result = evaluate(perfect, samples(gts, gts))
    assert result == {'accuracy': 1.0, 'f1_macro': 1.0}


def test_mixed_label_kinds_fail():
    metric = build_metric()
    data = samples([[0.2, 0.8]], [1]) + samples([[0.2, 0.8]], [[0.0, 1.0]])
    with pytest.raises(ValueError, match='both single-label'):
        evaluate(metric, data)
    assert not math.isnan(binary_auroc([0.0, 1.0], [False, True]))


def test_text_groups_slice_by_wording_and_match_the_generator():
    """The shapes config's text groups split the count questions exactly
    into counting by colour and counting by shape, and nothing else."""
    from omegaconf import OmegaConf

    from mmfusion.datasets.shapes.scene import COLOURS, SHAPES
    from mmfusion.datasets.shapes.shapes_generator import (
        IMAGE_CONTROL_TEXT, MAX_COUNT, count_text)
    root = Path(__file__).resolve().parents[2]
    cfg = OmegaConf.load(root / 'configs' / 'dataset' / 'shapes_cls.yaml')
    groups = OmegaConf.to_container(cfg.val_evaluator.text_groups)
    assert set(groups) == {'count_by_colour', 'count_by_shape'}
    texts, subtype = [], []
    for n in range(1, MAX_COUNT + 1):
        for c in COLOURS:
            texts.append(count_text('colour', c, n))
            subtype.append('count_by_colour')
        for s in SHAPES:
            texts.append(count_text('shape', s, n))
            subtype.append('count_by_shape')
    others = [IMAGE_CONTROL_TEXT, 'is the circle blue?',
              'is the red shape a square?', 'is there a red shape?']
    metric = build_metric(text_groups=groups)
    data = samples([[0.1, 0.9]] * (len(texts) + len(others)),
                   [1] * len(texts) + [0] * len(others))
    for d, text in zip(data, texts + others):
        d['text'] = text
    # Every count question right, every other one wrong.
    result = evaluate(metric, data)
    assert result['accuracy/count_by_colour'] == 1.0
    assert result['accuracy/count_by_shape'] == 1.0
    metric.process(None, data)
    assert [r['text_groups'] for r in metric.results] == \
        [[s] for s in subtype] + [[]] * len(others)


def test_text_groups_errors_name_the_group():
    with pytest.raises(ValueError, match=r"text_groups\['bad'\]"):
        build_metric(text_groups={'bad': '(unclosed'})
    metric = build_metric(text_groups={'colour': 'circle'})
    data = samples([[0.1, 0.9]], [1], ['colour'])
    data[0]['text'] = 'is the circle blue?'
    with pytest.raises(ValueError, match='rename'):
        evaluate(metric, data)
