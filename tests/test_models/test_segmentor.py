"""TextConditionedSegmentor: loss and predict through every fusion block
that accepts maps, sizes found from the parts, padding, baselines; the
per-class IoU metric."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmfusion.models.fusions import MAP, BaseFusion
from mmfusion.registry import METRICS, MODELS

B, L = 2, 5


def map_fusions():
    MODELS.import_from_location()
    return sorted(name for name, cls in MODELS.module_dict.items()
                  if isinstance(cls, type) and issubclass(cls, BaseFusion)
                  and MAP in getattr(cls, 'input_kinds', ()))


# Small settings so every block runs in a fraction of a second.
SMALL_FUSION = {
    'FiLMFusion': dict(num_blocks=1, channels=16, out_dim=16, block='plain',
                       pooling=['max']),
    'CrossAttentionFusion': dict(embed_dims=16, num_heads=2, num_layers=1,
                                 out_dim=16),
    'CoAttentionFusion': dict(embed_dims=16, num_heads=2, num_layers=1,
                              out_dim=16),
    'SingleStreamFusion': dict(embed_dims=16, num_heads=2, num_layers=1,
                               out_dim=16),
}


def segmentor_cfg(fusion='FiLMFusion', num_classes=2, **kwargs):
    fusion_cfg = dict(type=fusion, **SMALL_FUSION.get(fusion, {}))
    if fusion not in SMALL_FUSION:
        fusion_cfg['out_dim'] = 16
    cfg = dict(
        type='TextConditionedSegmentor',
        image_encoder=dict(_scope_='mmdet', type='ResNet', depth=18,
                           base_channels=8, num_stages=3, strides=(1, 2, 2),
                           dilations=(1, 1, 1), out_indices=(0, 1, 2)),
        text_encoder=dict(type='RNNTextEncoder', embed_dims=8,
                          hidden_dims=8),
        fusion=fusion_cfg,
        head=dict(_scope_='mmseg', type='FCNHead', channels=8, num_convs=1,
                  input_transform='resize_concat', num_classes=num_classes,
                  out_channels=num_classes,
                  norm_cfg=dict(type='BN', requires_grad=True),
                  loss_decode=dict(type='CrossEntropyLoss',
                                   avg_non_ignore=True)),
        share_fusion=False,
        data_preprocessor=dict(type='MultimodalSegDataPreprocessor',
                               tokenizer=dict(type='VocabTokenizer',
                                              max_vocab_size=50)))
    cfg.update(kwargs)
    return cfg


def make_batch(sizes=((32, 32), (32, 32)), num_classes=2, seed=0):
    """Raw pipeline output for images of ``sizes`` (H, W)."""
    g = torch.Generator().manual_seed(seed)
    imgs, samples = [], []
    for h, w in sizes:
        imgs.append(torch.randint(0, 256, (3, h, w), generator=g,
                                  dtype=torch.uint8))
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=torch.randint(
            0, num_classes, (1, h, w), generator=g))
        s.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w)))
        samples.append(s)
    texts = ['the red circle', 'the blue squares'] * (len(sizes) // 2 + 1)
    return {'inputs': {'img': imgs, 'text': texts[:len(sizes)]},
            'data_samples': samples}


def build(cfg):
    model = MODELS.build(cfg)
    model.data_preprocessor.tokenizer.fit(
        ['the red circle', 'the blue squares'])
    return model


def test_map_fusions_discovered():
    names = map_fusions()
    assert {'FiLMFusion', 'ConcatFusion', 'CrossAttentionFusion'} <= set(
        names)


@pytest.mark.parametrize('fusion', map_fusions())
def test_loss_and_predict_through_every_map_fusion(fusion):
    torch.manual_seed(0)
    model = build(segmentor_cfg(fusion)).train()
    data = model.data_preprocessor(make_batch(), True)
    losses = model(**data, mode='loss')
    assert torch.isfinite(losses['decode.loss_ce'])
    losses['decode.loss_ce'].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.text_encoder.parameters())
    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(make_batch(), False)
        logits = model(**data, mode='tensor')
        out = model(**data, mode='predict')
    assert logits.shape[:2] == (B, 2)
    for sample in out:
        assert sample.pred_sem_seg.data.shape == (1, 32, 32)
        assert sample.seg_logits.data.shape == (2, 32, 32)
        assert set(sample.pred_sem_seg.data.unique().tolist()) <= {0, 1}


def test_sizes_are_found():
    model = build(segmentor_cfg())
    # ResNet-18 of width 8: 8, 16 and 32 channels at strides 4, 8, 16.
    assert model.image_channels == (8, 16, 32)
    assert [f.image_dim for f in model.fusion] == [8, 16, 32]
    assert model.decode_head.in_channels == 3 * 16
    assert model.decode_head.in_index == [0, 1, 2]
    # With a neck: its in_channels come from the image encoder.
    model = build(segmentor_cfg(neck=dict(_scope_='mmdet', type='FPN',
                                          out_channels=12, num_outs=3),
                                share_fusion=True))
    assert model.image_channels == (12, 12, 12)
    assert not isinstance(model.fusion, torch.nn.ModuleList)


def test_vector_only_fusion_is_refused():
    with pytest.raises(ValueError, match='FiLMFusion'):
        build(segmentor_cfg('LateFusion'))


def test_padded_batch_predicts_each_image_at_its_size():
    model = build(segmentor_cfg()).eval()
    batch = make_batch(sizes=((24, 32), (32, 20)))
    with torch.no_grad():
        data = model.data_preprocessor(batch, False)
        assert data['inputs']['img'].shape[-2:] == (32, 32)
        out = model(**data, mode='predict')
    assert out[0].metainfo['padding_size'] == (0, 0, 0, 8)
    assert out[1].metainfo['padding_size'] == (0, 12, 0, 0)
    assert out[0].pred_sem_seg.data.shape == (1, 24, 32)
    assert out[1].pred_sem_seg.data.shape == (1, 32, 20)


def test_per_class_target_and_no_samples():
    model = build(segmentor_cfg(num_classes=4)).eval()
    with torch.no_grad():
        data = model.data_preprocessor(make_batch(num_classes=4), False)
        out = model(**data, mode='predict')
        bare = model.predict(data['inputs'])
    assert out[0].seg_logits.data.shape == (4, 32, 32)
    assert bare[0].pred_sem_seg.data.shape == (1, 32, 32)


def test_image_only_baseline_ignores_the_text():
    model = build(segmentor_cfg(modalities=['image'])).eval()
    batch = make_batch()
    other = make_batch()
    other['inputs']['text'] = ['the blue squares', 'the red circle']
    with torch.no_grad():
        a = model(**model.data_preprocessor(batch, False), mode='tensor')
        b = model(**model.data_preprocessor(other, False), mode='tensor')
    torch.testing.assert_close(a, b)
    full = build(segmentor_cfg()).eval()
    with torch.no_grad():
        a = full(**full.data_preprocessor(batch, False), mode='tensor')
        b = full(**full.data_preprocessor(other, False), mode='tensor')
    assert not torch.allclose(a, b)


def test_slide_mode_refused():
    with pytest.raises(ValueError, match='whole'):
        build(segmentor_cfg(test_cfg=dict(mode='slide', crop_size=(8, 8),
                                          stride=(4, 4))))


def _metric_sample(pred, gt, group=None):
    s = SegDataSample()
    s.pred_sem_seg = PixelData(data=torch.as_tensor(pred)[None])
    s.gt_sem_seg = PixelData(data=torch.as_tensor(gt)[None])
    if group is not None:
        s.set_metainfo(dict(phrase_type=group))
    return s.to_dict()


def test_per_class_iou_metric_in_unit_range():
    metric = METRICS.build(dict(type='PerClassIoUMetric'))
    metric.dataset_meta = dict(classes=('background', 'referred'))
    gt = np.zeros((4, 4), np.int64)
    gt[:2, :2] = 1
    gt[3, 3] = 255
    pred = np.zeros((4, 4), np.int64)
    pred[:2, :3] = 1
    pred[3, 3] = 1  # on an ignored pixel: counts neither way
    perfect = gt.copy()
    perfect[3, 3] = 0
    metric.process({}, [_metric_sample(pred, gt, 'colour'),
                        _metric_sample(perfect, gt, 'shape')])
    out = metric.evaluate(2)
    # referred: intersection 4 + 4, union 6 + 4 over both samples.
    assert out['IoU/referred'] == pytest.approx(8 / 10)
    assert out['IoU/background'] == pytest.approx(20 / 22)
    assert out['mIoU'] == pytest.approx((8 / 10 + 20 / 22) / 2)
    assert out['IoU/referred/colour'] == pytest.approx(4 / 6)
    assert out['IoU/referred/shape'] == pytest.approx(1.0)
    assert out['aAcc'] == pytest.approx(28 / 30)
    assert all(0.0 <= v <= 1.0 for v in out.values())


def test_per_class_iou_metric_prefix_and_missing_masks():
    metric = METRICS.build(dict(type='PerClassIoUMetric', prefix='seg',
                                group_key=None))
    metric.dataset_meta = dict(classes=('background', 'referred'))
    no_mask = SegDataSample()
    no_mask.pred_sem_seg = PixelData(data=torch.zeros(1, 2, 2,
                                                      dtype=torch.long))
    metric.process({}, [no_mask.to_dict(),
                        _metric_sample(np.eye(2, dtype=np.int64),
                                       np.eye(2, dtype=np.int64))])
    out = metric.evaluate(1)
    assert out['seg/IoU/referred'] == 1.0 and out['seg/mIoU'] == 1.0
