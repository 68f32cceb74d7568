"""MultiTaskModel: one trunk, a segmentation and a classification head,
per-task loss weights, missing targets, per-task metric prefixes."""
from __future__ import annotations

import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmfusion.registry import MODELS

from .test_segmentor import segmentor_cfg

TEXTS = ['the red circle', 'the blue squares', 'every shape']


def multitask_cfg(**kwargs):
    base = segmentor_cfg()
    seg_head = base.pop('head')
    base.update(type='MultiTaskModel', heads=dict(
        seg=seg_head,
        count=dict(type='ClsHead', num_classes=3, hidden_dims=[8])))
    base.update(kwargs)
    return base


def build(**kwargs):
    torch.manual_seed(0)
    model = MODELS.build(multitask_cfg(**kwargs))
    model.data_preprocessor.tokenizer.fit(TEXTS)
    return model


def batch(n=3, masks=None, labels=None, seed=0):
    """``masks``/``labels``: per sample, whether it has that target."""
    g = torch.Generator().manual_seed(seed)
    masks = [True] * n if masks is None else masks
    labels = [True] * n if labels is None else labels
    samples = []
    for i in range(n):
        s = SegDataSample()
        if masks[i]:
            s.gt_sem_seg = PixelData(data=torch.randint(0, 2, (1, 32, 32),
                                                        generator=g))
        if labels[i]:
            s.gt_label = torch.tensor([i % 3])
        s.set_metainfo(dict(img_shape=(32, 32), ori_shape=(32, 32),
                            phrase_type='colour'))
        samples.append(s)
    imgs = [torch.randint(0, 256, (3, 32, 32), generator=g,
                          dtype=torch.uint8) for _ in range(n)]
    return {'inputs': {'img': imgs, 'text': (TEXTS * n)[:n]},
            'data_samples': samples}


def test_loss_keys_weights_and_shared_trunk():
    model = build(loss_weights=dict(count=0.5)).train()
    assert model.loss_weights == {'seg': 1.0, 'count': 0.5}
    assert model.dense_task == 'seg'
    # The classification head reads the fused pooled vector.
    first = model.fusion[0]
    assert model.heads['count'].in_channels == first.out_dim
    data = model.data_preprocessor(batch(), True)
    losses = model(**data, mode='loss')
    assert {'seg.loss_ce', 'seg.acc_seg', 'count.loss_cls'} <= set(losses)
    unweighted = build().train()
    ref = unweighted(**unweighted.data_preprocessor(batch(), True),
                     mode='loss')
    torch.testing.assert_close(losses['count.loss_cls'],
                               0.5 * ref['count.loss_cls'])
    torch.testing.assert_close(losses['seg.loss_ce'], ref['seg.loss_ce'])
    (losses['seg.loss_ce'] + losses['count.loss_cls']).backward()
    assert model.image_encoder.conv1.weight.grad.abs().sum() > 0


def test_unknown_loss_weight_task():
    with pytest.raises(ValueError, match='not heads'):
        build(loss_weights=dict(depth=1.0))


def test_missing_targets_add_no_loss():
    """A sample without a mask (label) adds nothing to the seg (count)
    loss: the loss equals the one of the samples that have it."""
    import copy
    model = build().eval()  # eval: BN statistics do not depend on the batch

    def losses_of(raw):
        data = model.data_preprocessor(copy.deepcopy(raw), True)
        with torch.no_grad():
            return model.loss(data['inputs'], data['data_samples'])

    def subset(raw, keep):
        return {'inputs': {k: [v[i] for i in keep]
                           for k, v in raw['inputs'].items()},
                'data_samples': [raw['data_samples'][i] for i in keep]}

    full = batch(3)
    part = copy.deepcopy(full)
    del part['data_samples'][1].gt_sem_seg
    del part['data_samples'][0].gt_label
    got = losses_of(part)
    torch.testing.assert_close(got['seg.loss_ce'], losses_of(
        subset(full, [0, 2]))['seg.loss_ce'])
    torch.testing.assert_close(got['count.loss_cls'], losses_of(
        subset(full, [1, 2]))['count.loss_cls'])


def test_no_target_in_batch_gives_zero_loss_with_gradients():
    model = build().train()
    data = model.data_preprocessor(batch(2, labels=[False, False]), True)
    losses = model(**data, mode='loss')
    assert float(losses['count.loss_cls']) == 0.0
    (losses['seg.loss_ce'] + losses['count.loss_cls']).backward()
    for p in model.heads['count'].parameters():
        assert p.grad is not None and float(p.grad.abs().sum()) == 0.0


def test_predict_fills_every_task_and_metrics_are_prefixed():
    model = build().eval()
    with torch.no_grad():
        data = model.data_preprocessor(batch(), False)
        out = model(**data, mode='predict')
        raw = model(**data, mode='tensor')
    assert raw['count'].shape == (3, 3) and raw['seg'].shape[:2] == (3, 2)
    for sample in out:
        assert sample.pred_sem_seg.data.shape == (1, 32, 32)
        assert sample.pred_score.shape == (3,)
    evaluator = Evaluator([
        dict(type='PerClassIoUMetric', prefix='seg'),
        dict(type='MultimodalClsMetric', prefix='count',
             group_key='phrase_type')])
    evaluator.dataset_meta = dict(classes=('background', 'referred'))
    evaluator.process(out)
    metrics = evaluator.evaluate(3)
    assert 'seg/IoU/referred' in metrics and 'seg/mIoU' in metrics
    assert 'count/accuracy' in metrics
    assert 'count/accuracy/colour' in metrics
    assert all(not k.startswith(('IoU', 'accuracy')) for k in metrics)
