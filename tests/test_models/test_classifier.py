"""End-to-end checks of MultimodalClassifier built from configs."""
import copy

import pytest
import torch
import torch.nn.functional as F
from mmengine.dataset import pseudo_collate
from mmengine.optim import OptimWrapper
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import init_default_scope

from mmfusion.structures import MultimodalDataSample

NUM_CLASSES = 4
TEXTS = ['is the cube red ?', 'what color is the ball ?', 'how many spheres',
         'is there a small cylinder left of the cube ?', 'red', None,
         'what is the big thing made of ?', 'are there more balls than cubes']

FUSIONS = {
    'concat': dict(type='ConcatFusion', out_dim=32, hidden_dims=(32,)),
    'film': dict(type='FiLMFusion', num_blocks=2, channels=16, out_dim=32),
    'cross_attention': dict(type='CrossAttentionFusion', embed_dims=16,
                            num_heads=2, out_dim=32),
    'image_to_text': dict(type='CrossAttentionFusion', embed_dims=16,
                          num_heads=2, out_dim=32,
                          direction='image_to_text'),
    'co_attention': dict(type='CoAttentionFusion', embed_dims=16,
                         num_heads=2, out_dim=32),
    'single_stream': dict(type='SingleStreamFusion', embed_dims=16,
                          num_heads=2, out_dim=32),
    'sum': dict(type='SumFusion', out_dim=32),
    'mean': dict(type='MeanFusion', out_dim=32),
    'weighted': dict(type='WeightedFusion', out_dim=32),
    'gated': dict(type='GatedFusion', out_dim=32),
    'bilinear': dict(type='BilinearFusion', rank=32, out_dim=32),
    'tensor': dict(type='TensorFusion', proj_dim=8, hidden_dims=(32,),
                   out_dim=32),
    'low_rank': dict(type='LowRankFusion', rank=4, out_dim=32),
    'late': dict(type='LateFusion', hidden_dims=(32,), out_dim=32),
}


def model_cfg(fusion='concat', **kwargs):
    cfg = dict(
        type='MultimodalClassifier',
        data_preprocessor=dict(
            type='MultimodalDataPreprocessor', pad_size_divisor=4,
            tokenizer=dict(type='VocabTokenizer', max_length=12,
                           max_vocab_size=50)),
        image_encoder=dict(type='SmallCNN', channels=(8, 16, 16),
                           strides=(2, 2, 1)),
        text_encoder=dict(type='RNNTextEncoder', embed_dims=16,
                          hidden_dims=8),
        fusion=copy.deepcopy(FUSIONS[fusion]),
        head=dict(type='ClsHead', num_classes=NUM_CLASSES, hidden_dims=(32,)))
    cfg.update(kwargs)
    return cfg


def build(fusion='concat', **kwargs):
    """Build like the Runner: mmengine's root registry, default scope."""
    init_default_scope('mmfusion')
    torch.manual_seed(0)
    model = ROOT_MODELS.build(model_cfg(fusion, **kwargs))
    model.data_preprocessor.tokenizer.fit(t for t in TEXTS if t)
    return model


def raw_batch(n=4, texts=None, seed=0):
    """A pseudo-collated batch as the dataloader makes it."""
    g = torch.Generator().manual_seed(seed)
    texts = TEXTS if texts is None else texts
    items = []
    for i in range(n):
        h, w = (32, 32) if i % 2 == 0 else (28, 36)
        img = torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8)
        sample = MultimodalDataSample(
            gt_label=torch.tensor([i % NUM_CLASSES]))
        sample.set_metainfo(dict(text=texts[i % len(texts)]))
        items.append(dict(inputs=dict(img=img, text=texts[i % len(texts)]),
                          data_samples=sample))
    return pseudo_collate(items)


def predict_scores(model, data):
    model.eval()
    with torch.no_grad():
        samples = model(**data, mode='predict')
    return torch.stack([s.pred_score for s in samples])


def test_preprocessor_output():
    model = build()
    data = model.data_preprocessor(raw_batch(3), False)
    inputs = data['inputs']
    assert inputs['img'].shape == (3, 3, 32, 36)  # 36 is a multiple of 4
    assert inputs['img'].dtype == torch.float32
    assert inputs['text_ids'].dtype == torch.long
    assert inputs['text_mask'].shape == inputs['text_ids'].shape
    assert inputs['image_present'].all() and inputs['text_present'].all()
    assert data['data_samples'][0].batch_input_shape == (32, 36)
    # BGR -> RGB then normalised: channel 0 of the output is input channel 2.
    raw = raw_batch(3)['inputs']['img'][0].float()
    expected = (raw[2] - 123.675) / 58.395
    torch.testing.assert_close(inputs['img'][0, 0, :32, :32], expected)
    assert (inputs['img'][1, :, 28:] == 0).all()  # padding


def test_preprocessor_stacked_images_and_absent():
    model = build()
    batch = raw_batch(2)
    batch['inputs']['img'] = torch.stack(
        [F.pad(im, (0, 36 - im.shape[2], 0, 32 - im.shape[1]))
         for im in batch['inputs']['img']])
    batch['inputs']['text'] = [None, 'red cube']
    data = model.data_preprocessor(batch, False)
    assert data['inputs']['img'].shape == (2, 3, 32, 36)
    assert data['inputs']['text_present'].tolist() == [False, True]
    batch = raw_batch(2)
    batch['inputs']['img'] = [None, batch['inputs']['img'][1]]
    data = model.data_preprocessor(batch, False)
    assert data['inputs']['image_present'].tolist() == [False, True]


def test_preprocessor_unfitted_tokenizer():
    init_default_scope('mmfusion')
    model = ROOT_MODELS.build(model_cfg())
    with pytest.raises(RuntimeError, match='TokenizerHook'):
        model.data_preprocessor(raw_batch(2), True)


@pytest.mark.parametrize('fusion', list(FUSIONS))
def test_loss_backward_predict_tensor(fusion):
    model = build(fusion)
    model.train()
    data = model.data_preprocessor(raw_batch(4), True)
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_cls'}
    assert torch.isfinite(losses['loss_cls'])
    losses['loss_cls'].backward()
    # Every parameter takes part (distributed training rejects unused ones).
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert not unused

    data = model.data_preprocessor(raw_batch(4), False)
    model.eval()
    with torch.no_grad():
        samples = model(**data, mode='predict')
        logits = model(**data, mode='tensor')
    assert logits.shape == (4, NUM_CLASSES)
    for s in samples:
        assert s.pred_score.shape == (NUM_CLASSES,)
        torch.testing.assert_close(s.pred_score.sum(), torch.tensor(1.0))
        assert s.pred_label.shape == (1,) and s.pred_label.dtype == torch.long
        assert 'attention' not in s  # only when asked for


@pytest.mark.parametrize('fusion', list(FUSIONS))
def test_longer_padding_keeps_predictions(fusion):
    model = build(fusion)
    data = model.data_preprocessor(raw_batch(4), False)
    ref = predict_scores(model, data)
    inputs = dict(data['inputs'])
    inputs['text_ids'] = F.pad(inputs['text_ids'], (0, 5))
    inputs['text_mask'] = F.pad(inputs['text_mask'], (0, 5))
    out = predict_scores(model, dict(inputs=inputs,
                                     data_samples=data['data_samples']))
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)


@pytest.mark.parametrize('fusion', ['film', 'cross_attention'])
def test_image_only_ignores_text(fusion):
    model = build(fusion, modalities=('image', ))
    a = predict_scores(model, model.data_preprocessor(raw_batch(4), False))
    other = ['how many red things', None, 'cube', 'what ?']
    b = predict_scores(model, model.data_preprocessor(
        raw_batch(4, texts=other), False))
    torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_text_only_ignores_image():
    model = build('cross_attention', modalities=['text'])
    a = predict_scores(model, model.data_preprocessor(raw_batch(4), False))
    b = predict_scores(model, model.data_preprocessor(raw_batch(4, seed=1),
                                                      False))
    torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_bad_modalities():
    with pytest.raises(ValueError, match='non-empty subset'):
        build(modalities=('image', 'audio'))
    with pytest.raises(ValueError, match='non-empty subset'):
        build(modalities=())


@pytest.mark.parametrize('fusion', ['cross_attention', 'image_to_text',
                                    'co_attention', 'single_stream'])
def test_attention_on_request(fusion):
    model = build(fusion)
    data = model.data_preprocessor(raw_batch(2), False)
    model.eval()
    with torch.no_grad():
        plain = model(**data, mode='predict')
        assert all('attention' not in s for s in plain)
        data = model.data_preprocessor(raw_batch(2), False)
        samples = model(**data, mode='predict', return_attention=True)
    length = data['inputs']['text_ids'].shape[1]
    h, w = samples[0].attention_hw
    assert samples[0].attention.shape == (2, length, h * w)
    torch.testing.assert_close(plain[0].pred_score, samples[0].pred_score,
                               atol=1e-5, rtol=0)


def test_modality_dropout_and_absent_text():
    model = build('film', modality_dropout=dict(text=0.5, image=0.5))
    model.train()
    data = model.data_preprocessor(raw_batch(8), True)
    loss = model(**data, mode='loss')['loss_cls']
    assert torch.isfinite(loss)
    loss.backward()
    # Dropout is training-only.
    data = model.data_preprocessor(raw_batch(4), False)
    torch.testing.assert_close(predict_scores(model, data),
                               predict_scores(model, data))
    with pytest.raises(ValueError, match='modality_dropout'):
        build(modality_dropout=dict(audio=0.1))


def test_fusion_input_kind_checked():
    with pytest.raises(ValueError, match='ConcatFusion'):
        build('film', fusion_input='vector')
    model = build('concat', fusion_input='vector')
    data = model.data_preprocessor(raw_batch(2), False)
    assert model(**data, mode='tensor').shape == (2, NUM_CLASSES)


def test_several_levels():
    encoder = dict(type='SmallCNN', channels=(8, 16, 16), strides=(2, 2, 1),
                   out_indices=(1, 2))
    model = build('film', image_encoder=encoder)
    assert model.image_channels == (16, 16)
    assert not isinstance(model.fusion, torch.nn.ModuleList)
    data = model.data_preprocessor(raw_batch(2), False)
    assert model(**data, mode='tensor').shape == (2, NUM_CLASSES)

    encoder = dict(encoder, channels=(8, 16, 24))
    with pytest.raises(ValueError, match='equal channels'):
        build('film', image_encoder=encoder)
    model = build('film', image_encoder=encoder, share_fusion=False)
    assert [f.image_dim for f in model.fusion] == [16, 24]
    assert model(**data, mode='tensor').shape == (2, NUM_CLASSES)


def test_neck_in_channels_from_the_image_levels():
    # The neck config has no in_channels: the classifier measures the
    # encoder's levels (8, 16, 24) and gives them to the FPN, whose equal
    # levels then share one fusion block.
    encoder = dict(type='SmallCNN', channels=(8, 16, 24), strides=(2, 2, 2),
                   out_indices=(0, 1, 2))
    neck = dict(type='FPN', _scope_='mmdet', out_channels=16, num_outs=3)
    model = build('film', image_encoder=encoder, neck=neck)
    assert list(model.neck.in_channels) == [8, 16, 24]
    assert model.image_channels == (16, 16, 16)
    assert not isinstance(model.fusion, torch.nn.ModuleList)
    assert model.fusion.image_dim == 16
    model.train()
    data = model.data_preprocessor(raw_batch(2), True)
    loss = model(**data, mode='loss')['loss_cls']
    assert torch.isfinite(loss)
    loss.backward()
    model.eval()
    data = model.data_preprocessor(raw_batch(2), False)
    assert model(**data, mode='tensor').shape == (2, NUM_CLASSES)
    # A neck config that sets in_channels keeps them (here wrong ones, so
    # the dummy forward at build time fails).
    with pytest.raises(RuntimeError, match='channels'):
        build('film', image_encoder=encoder,
              neck=dict(neck, in_channels=[8, 16, 32]))


def test_transformer_text_encoder():
    model = build('cross_attention', text_encoder=dict(
        type='TransformerTextEncoder', embed_dims=16, num_heads=2,
        ffn_dims=32, max_length=16, num_layers=1))
    assert model.fusion.text_dim == 16
    data = model.data_preprocessor(raw_batch(4), True)
    model.train()
    assert torch.isfinite(model(**data, mode='loss')['loss_cls'])


def test_mmdet_resnet_backbone():
    model = build('film', image_encoder=dict(
        type='ResNet', _scope_='mmdet', depth=18, base_channels=16,
        num_stages=4, out_indices=(3, )))
    assert model.image_channels == (128, )
    model.train()
    data = model.data_preprocessor(raw_batch(2), True)
    loss = model(**data, mode='loss')['loss_cls']
    assert torch.isfinite(loss)
    loss.backward()


@pytest.mark.parametrize('fusion', list(FUSIONS))
def test_overfits_a_tiny_batch(fusion):
    model = build(fusion)
    model.train()
    optim = OptimWrapper(torch.optim.Adam(model.parameters(), lr=3e-3))
    batch = raw_batch(8)
    losses = [model.train_step(batch, optim)['loss_cls'].item()
              for _ in range(30)]
    assert losses[-1] < 0.5 * losses[0], losses


def test_multi_label_head():
    model = build('concat', head=dict(type='MultiLabelClsHead',
                                      num_classes=NUM_CLASSES,
                                      hidden_dims=()))
    batch = raw_batch(4)
    for i, s in enumerate(batch['data_samples']):
        s.gt_label = torch.tensor([1.0, 0.0, float(i % 2), 1.0])
    model.train()
    data = model.data_preprocessor(batch, True)
    loss = model(**data, mode='loss')['loss_cls']
    assert torch.isfinite(loss)
    model.eval()
    with torch.no_grad():
        samples = model(**data, mode='predict')
    assert samples[0].pred_score.shape == (NUM_CLASSES, )
    assert ((samples[0].pred_score >= 0.5).long()
            == samples[0].pred_label).all()


def test_init_weights_and_deepcopy():
    model = build('cross_attention')
    model.init_weights()
    clone = copy.deepcopy(model)
    assert clone.data_preprocessor.tokenizer.vocab == \
        model.data_preprocessor.tokenizer.vocab
    data = model.data_preprocessor(raw_batch(2), False)
    torch.testing.assert_close(predict_scores(clone, data),
                               predict_scores(model, data))


def test_vocab_size_checked_against_tokenizer():
    with pytest.raises(ValueError, match='max_vocab_size'):
        build(text_encoder=dict(type='RNNTextEncoder', vocab_size=10))
    assert build().text_encoder.vocab_size == 50


@pytest.mark.parametrize('fusion', ['tensor', 'low_rank', 'late'])
def test_vector_only_fusion_refuses_maps(fusion):
    with pytest.raises(ValueError, match='SumFusion'):
        build(fusion, fusion_input='map')
    assert build(fusion).image_kind == 'vector'
