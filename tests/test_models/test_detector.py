"""The text-conditioned detector: losses, every map fusion, modalities,
build-time checks and prediction."""
from __future__ import annotations

import copy

import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

from mmfusion.models.detectors import TextConditionedDetector
from mmfusion.models.fusions import MAP, BaseFusion
from mmfusion.registry import MODELS

SIZE = 64
TEXTS = ['the red circles', 'the blue shapes on the left', 'every shape']

RETINA = dict(
    _scope_='mmdet', type='RetinaHead', num_classes=1, stacked_convs=1,
    feat_channels=16,
    anchor_generator=dict(type='AnchorGenerator', octave_base_scale=2,
                          scales_per_octave=2, ratios=[1.0],
                          strides=[8, 16]),
    bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4,
                    target_stds=[1.0] * 4),
    loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                  loss_weight=1.0),
    loss_bbox=dict(type='L1Loss', loss_weight=1.0),
    train_cfg=dict(
        assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5,
                      neg_iou_thr=0.4, min_pos_iou=0, ignore_iof_thr=-1),
        sampler=dict(type='PseudoSampler'), allowed_border=-1,
        pos_weight=-1, debug=False),
    test_cfg=dict(nms_pre=100, min_bbox_size=0, score_thr=0.0,
                  nms=dict(type='nms', iou_threshold=0.5), max_per_img=20))

FILM = dict(type='FiLMFusion', num_blocks=1, channels=16, block='plain',
            out_dim=16, coord_conv=True, pooling=['max'])


def detector_cfg(**overrides) -> dict:
    cfg = dict(
        type='TextConditionedDetector',
        image_encoder=dict(_scope_='mmdet', type='ResNet', depth=18,
                           base_channels=8, num_stages=3, strides=(1, 2, 2),
                           dilations=(1, 1, 1), out_indices=(1, 2),
                           norm_cfg=dict(type='BN', requires_grad=True),
                           norm_eval=False, style='pytorch'),
        neck=dict(_scope_='mmdet', type='FPN', out_channels=16, num_outs=2),
        text_encoder=dict(type='RNNTextEncoder', embed_dims=8,
                          hidden_dims=8, pooling='mean'),
        fusion=copy.deepcopy(FILM),
        head=copy.deepcopy(RETINA),
        data_preprocessor=dict(
            type='MultimodalDetDataPreprocessor', pad_size_divisor=32,
            tokenizer=dict(type='VocabTokenizer', max_length=8,
                           max_vocab_size=50)))
    cfg.update(overrides)
    return cfg


def build(**overrides) -> TextConditionedDetector:
    torch.manual_seed(0)
    model = MODELS.build(detector_cfg(**overrides))
    model.init_weights()
    model.data_preprocessor.tokenizer.fit(TEXTS)
    return model


def batch(boxes_per_sample, texts=None, seed=0):
    """A pseudo-collated batch as the dataloader gives it."""
    g = torch.Generator().manual_seed(seed)
    imgs, samples = [], []
    for i, boxes in enumerate(boxes_per_sample):
        imgs.append(torch.randint(0, 256, (3, SIZE, SIZE), generator=g,
                                  dtype=torch.uint8))
        sample = DetDataSample(metainfo=dict(
            img_shape=(SIZE, SIZE), ori_shape=(SIZE, SIZE),
            scale_factor=(1.0, 1.0), img_id=i))
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            labels=torch.zeros(len(boxes), dtype=torch.long))
        samples.append(sample)
    texts = texts or [TEXTS[i % len(TEXTS)] for i in range(len(imgs))]
    return {'inputs': {'img': imgs, 'text': texts}, 'data_samples': samples}


def losses_of(model, data):
    data = model.data_preprocessor(data, True)
    losses = model(**data, mode='loss')
    return {k: sum(v) if isinstance(v, (list, tuple)) else v
            for k, v in losses.items()}


def test_loss_empty_ground_truth():
    """No target (a negative phrase): only background, so the box loss is 0
    and the classification loss is not."""
    model = build().train()
    losses = losses_of(model, batch([[], []]))
    assert losses['loss_cls'].item() > 0
    assert losses['loss_bbox'].item() == 0


def test_loss_with_targets():
    model = build().train()
    losses = losses_of(model, batch([[[10, 12, 30, 32]],
                                     [[4, 4, 20, 20], [36, 30, 60, 54]]]))
    assert losses['loss_cls'].item() > 0
    assert losses['loss_bbox'].item() > 0


def test_parts_built_and_sized():
    model = build()
    assert model.image_encoder is model.backbone
    assert model.head is model.bbox_head
    # FPN in_channels measured from the ResNet (8-wide: 16 and 32).
    assert list(model.neck.in_channels) == [16, 32]
    assert model.image_channels == (16, 16)
    assert isinstance(model.fusion, torch.nn.ModuleList)  # one per level
    assert model.bbox_head.in_channels == model.fusion[0].map_dim
    shared = build(share_fusion=True)
    assert isinstance(shared.fusion, BaseFusion)


def map_fusions():
    MODELS.import_from_location()
    return sorted(name for name, cls in MODELS.module_dict.items()
                  if isinstance(cls, type) and issubclass(cls, BaseFusion)
                  and MAP in cls.input_kinds)


def small_fusion(name: str) -> dict:
    """The block with its defaults, narrowed where it takes a width."""
    from mmfusion.config.validate import constructor_params
    params = constructor_params(MODELS.get(name)) or set()
    cfg = dict(type=name)
    for key, value in (('out_dim', 16), ('channels', 16), ('embed_dims', 16),
                       ('num_heads', 2), ('num_layers', 1), ('rank', 16),
                       ('proj_dim', 8), ('num_blocks', 1)):
        if key in params:
            cfg[key] = value
    return cfg


def test_every_map_fusion_is_found():
    names = map_fusions()
    assert {'FiLMFusion', 'CrossAttentionFusion', 'ConcatFusion'} <= set(
        names)


@pytest.mark.parametrize('name', map_fusions())
def test_forward_backward_every_map_fusion(name):
    model = build(fusion=small_fusion(name)).train()
    losses = losses_of(model, batch([[[10, 12, 30, 32]], []]))
    total = losses['loss_cls'] + losses['loss_bbox']
    assert torch.isfinite(total)
    total.backward()
    fusion = model.fusion[0]
    grads = [p.grad for p in fusion.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads), name
    assert all(g is None or torch.isfinite(g).all() for g in grads)
    text_grads = [p.grad for p in model.text_encoder.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in text_grads), \
        f'{name}: the text does not reach the loss'


def test_vector_only_fusion_rejected():
    with pytest.raises(ValueError, match='map') as err:
        build(fusion=dict(type='LateFusion', out_dim=16))
    assert 'FiLMFusion' in str(err.value)


def test_strided_fusion_rejected():
    with pytest.raises(ValueError, match='input size'):
        build(fusion={**FILM, 'strides': [2]})


def test_image_only_ignores_text():
    model = build(modalities=['image']).eval()
    data = batch([[], []], texts=['the red circles', 'the red circles'])
    other = batch([[], []], texts=['every shape', 'the blue shapes on '
                                   'the left'])
    with torch.no_grad():
        a = model(**model.data_preprocessor(data, False), mode='tensor')
        b = model(**model.data_preprocessor(other, False), mode='tensor')
        full = build().eval()
        c = full(**full.data_preprocessor(data, False), mode='tensor')
        d = full(**full.data_preprocessor(other, False), mode='tensor')
    for x, y in zip(a[0], b[0]):
        assert torch.equal(x, y)
    assert not all(torch.equal(x, y) for x, y in zip(c[0], d[0]))


def test_text_only_refused():
    with pytest.raises(ValueError, match='modalities'):
        build(modalities=['text'])


def test_predict_gives_boxes_in_image_coordinates():
    model = build().eval()
    data = batch([[[10, 12, 30, 32]], []])
    with torch.no_grad():
        out = model(**model.data_preprocessor(data, False), mode='predict')
    assert len(out) == 2
    for sample in out:
        pred = sample.pred_instances
        assert pred.bboxes.shape[1] == 4
        assert len(pred.bboxes) == len(pred.scores) == len(pred.labels)
        assert len(pred.bboxes) <= 20
        if len(pred.bboxes):
            assert pred.bboxes.min() >= 0 and pred.bboxes.max() <= SIZE


def test_preprocessor_sets_pad_shape_and_tensors():
    model = build()
    data = model.data_preprocessor(batch([[[1, 2, 3, 4]]]), True)
    sample = data['data_samples'][0]
    assert sample.batch_input_shape == (SIZE, SIZE)
    assert sample.pad_shape == (SIZE, SIZE)
    assert data['inputs']['text_ids'].shape[0] == 1
    assert data['inputs']['img'].dtype == torch.float32
