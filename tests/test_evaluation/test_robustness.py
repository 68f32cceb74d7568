"""Robustness evaluation: corruption transforms, modality dropping, flag
parsing, the flat metrics and the curve."""
from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate

from mmfusion.evaluation import robustness as rb
from mmfusion.registry import TRANSFORMS

TEXT = 'is the small red cube left of the big blue sphere ?'


def build(cfg):
    return TRANSFORMS.build(cfg)


def sample(idx=0, img=None, text=TEXT):
    return {'sample_idx': idx, 'img_path': f'/x/{idx}.png', 'text': text,
            'img': img, 'gt_label': 1}


# ------------------------------------------------------------ transforms
def test_image_noise_std_clip_and_determinism():
    grey = np.full((64, 64, 3), 128, np.uint8)
    out = build(dict(type='ImageGaussianNoise', std=0.1))(sample(0, grey))
    img = out['img']
    assert img.dtype == np.uint8 and img.shape == grey.shape
    diff = img.astype(np.float64) - 128
    assert abs(diff.std() - 25.5) < 1.0 and abs(diff.mean()) < 1.0
    # Clipped, not wrapped: a white image stays bright on average.
    white = np.full((64, 64, 3), 255, np.uint8)
    out = build(dict(type='ImageGaussianNoise', std=0.2))(sample(0, white))
    assert out['img'].max() == 255 and out['img'].mean() > 225
    # Same seed and sample: same noise; another sample or seed: other noise.
    noise = build(dict(type='ImageGaussianNoise', std=0.1, seed=3))
    a = noise(sample(5, grey.copy()))['img']
    assert np.array_equal(a, noise(sample(5, grey.copy()))['img'])
    assert not np.array_equal(a, noise(sample(6, grey.copy()))['img'])
    other = build(dict(type='ImageGaussianNoise', std=0.1, seed=4))
    assert not np.array_equal(a, other(sample(5, grey.copy()))['img'])
    # std 0 and absent images: unchanged.
    zero = build(dict(type='ImageGaussianNoise', std=0))(sample(0, grey))
    assert np.array_equal(zero['img'], grey)
    assert build(dict(type='ImageGaussianNoise', std=0.3))(
        sample(0, None))['img'] is None
    with pytest.raises(ValueError, match='std'):
        build(dict(type='ImageGaussianNoise', std=-0.1))


def test_image_blur_smooths():
    yy, xx = np.mgrid[:32, :32]
    checker = (((yy // 2 + xx // 2) % 2) * 255).astype(np.uint8)
    img = np.repeat(checker[..., None], 3, axis=2)
    out = build(dict(type='ImageGaussianBlur', sigma=0.05))(sample(0, img))
    blurred = out['img']
    assert blurred.dtype == np.uint8 and blurred.shape == img.shape

    def roughness(a):  # mean absolute difference of horizontal neighbours
        a = a.astype(np.float64)
        return np.abs(np.diff(a, axis=1)).mean()

    assert roughness(blurred) < 0.2 * roughness(img)
    assert abs(blurred.mean() - img.mean()) < 3  # brightness kept
    # More sigma, smoother; constant images and sigma 0 are unchanged.
    more = build(dict(type='ImageGaussianBlur', sigma=0.2))(sample(0, img))
    assert roughness(more['img']) <= roughness(blurred)
    flat = np.full((16, 20, 3), 77, np.uint8)
    assert np.array_equal(build(dict(type='ImageGaussianBlur', sigma=0.3))(
        sample(0, flat))['img'], flat)
    assert build(dict(type='ImageGaussianBlur', sigma=0))(
        sample(0, img))['img'] is img
    grey = build(dict(type='ImageGaussianBlur', sigma=0.1))(
        sample(0, checker[..., None]))['img']
    assert grey.shape == (32, 32, 1)
    with pytest.raises(ValueError, match='sigma'):
        build(dict(type='ImageGaussianBlur', sigma=1.5))


def test_text_word_drop():
    words = TEXT.split()
    spaced = 'is  the   cube red ?'
    assert build(dict(type='TextWordDrop', prob=0))(
        sample(0, text=spaced))['text'] == spaced  # identity, byte for byte
    # prob 1 leaves no word: the text becomes absent.
    assert build(dict(type='TextWordDrop', prob=1))(sample(0))['text'] is None
    assert build(dict(type='TextWordDrop', prob=0.5))(
        sample(0, text=None))['text'] is None
    drop = build(dict(type='TextWordDrop', prob=0.5, seed=1))
    outs = [drop(sample(i))['text'] for i in range(40)]
    assert outs == [drop(sample(i))['text'] for i in range(40)]  # determinism
    kept = [len(t.split()) if t else 0 for t in outs]
    assert 0.3 < np.mean(kept) / len(words) < 0.7
    for text in outs:
        if text is None:
            continue
        # The kept words in their order: a subsequence of the original.
        it = iter(words)
        assert all(w in it for w in text.split())
    # One seed couples the strengths: what 0.2 drops, 0.6 drops too.
    low = build(dict(type='TextWordDrop', prob=0.2, seed=1))(sample(3))
    high = build(dict(type='TextWordDrop', prob=0.6, seed=1))(sample(3))
    assert set((high['text'] or '').split()) <= set(low['text'].split())


def test_text_shuffle_keeps_words():
    shuffle = build(dict(type='TextShuffle', prob=1, seed=0))
    outs = [shuffle(sample(i))['text'] for i in range(20)]
    assert all(sorted(t.split()) == sorted(TEXT.split()) for t in outs)
    assert any(t != TEXT for t in outs)
    assert outs == [shuffle(sample(i))['text'] for i in range(20)]
    assert all(build(dict(type='TextShuffle', prob=0))(sample(i))['text']
               == TEXT for i in range(5))
    half = build(dict(type='TextShuffle', prob=0.5))
    changed = sum(half(sample(i))['text'] != TEXT for i in range(200))
    assert 70 < changed < 130
    assert shuffle(sample(0, text=None))['text'] is None
    with pytest.raises(ValueError, match='prob'):
        build(dict(type='TextShuffle', prob=2))


def small_model():
    from mmengine.registry import MODELS as ROOT_MODELS
    torch.manual_seed(0)
    model = ROOT_MODELS.build(dict(
        type='MultimodalClassifier',
        data_preprocessor=dict(
            type='MultimodalDataPreprocessor',
            tokenizer=dict(type='VocabTokenizer', max_vocab_size=50)),
        image_encoder=dict(type='SmallCNN', channels=(8, 16),
                           strides=(2, 2)),
        text_encoder=dict(type='RNNTextEncoder', embed_dims=16,
                          hidden_dims=8),
        fusion=dict(type='ConcatFusion', out_dim=16, hidden_dims=(16,)),
        head=dict(type='ClsHead', num_classes=2, hidden_dims=(16,))))
    model.data_preprocessor.tokenizer.fit([TEXT])
    return model.eval()


def packed(extra=(), text=TEXT, idx=0):
    rng = np.random.default_rng(idx)
    results = sample(idx, rng.integers(0, 256, (16, 16, 3), dtype=np.uint8),
                     text)
    for t in (*extra, dict(type='PackMultimodalInputs')):
        results = build(t)(results)
    return results


def test_drop_modality_goes_through_presence_flags():
    out = packed([dict(type='DropModality', modalities='text')])
    assert out['inputs']['text'] == TEXT  # the data stay
    assert out['inputs']['text_present'] is False
    assert 'image_present' not in out['inputs']
    assert 'text_present' not in packed()['inputs']  # default unchanged
    with pytest.raises(ValueError, match='subset'):
        build(dict(type='DropModality', modalities=['audio']))

    model = small_model()

    def predict(items):
        data = model.data_preprocessor(pseudo_collate(items), False)
        with torch.no_grad():
            return data, torch.stack(
                [s.pred_score for s in model(**data, mode='predict')])

    drop_text = [dict(type='DropModality', modalities=['text'])]
    data, dropped = predict([packed(drop_text, idx=i) for i in range(3)])
    assert data['inputs']['text_present'].tolist() == [False] * 3
    assert data['inputs']['image_present'].all()
    # Same as absent texts (``"text": null``) ...
    _, null = predict([packed(text=None, idx=i) for i in range(3)])
    torch.testing.assert_close(dropped, null)
    # ... and as word drop with prob 1 (the text becomes absent).
    _, gone = predict([packed([dict(type='TextWordDrop', prob=1)], idx=i)
                       for i in range(3)])
    torch.testing.assert_close(dropped, gone)
    _, clean = predict([packed(idx=i) for i in range(3)])
    assert not torch.allclose(dropped, clean)

    drop_image = [dict(type='DropModality', modalities=['image'])]
    data, no_img = predict([packed(drop_image, idx=i) for i in range(3)])
    assert data['inputs']['image_present'].tolist() == [False] * 3
    # Without image features every sample has the same text: one answer.
    torch.testing.assert_close(no_img, no_img[:1].expand_as(no_img))


# --------------------------------------------------------------- parsing
def test_parse_corruption():
    assert rb.parse_corruption('image_noise:0.1,0.5') == (
        'image_noise', [0.1, 0.5])
    assert rb.parse_corruption('text_shuffle: 1, 0.5,1') == (
        'text_shuffle', [1.0, 0.5])
    for spec, match in [
            ('image_nosie:0.1', 'unknown corruption kind.*image_noise, '
             'image_blur, text_word_drop, text_shuffle'),
            ('image_noise', 'KIND:S1,S2'),
            ('image_noise:abc', "'abc' is not a number"),
            ('image_noise:-0.1', 'out of range'),
            ('image_noise:nan', 'out of range'),
            ('image_blur:1.5', r'out of range \[0, 1\]'),
            ('text_word_drop:0.5,1.01', 'out of range'),
            ('text_word_drop:', 'no strength')]:
        with pytest.raises(rb.RobustnessSpecError, match=match):
            rb.parse_corruption(spec)


def test_parse_drop_and_settings():
    assert rb.parse_drop_modality('text,image,text') == ['text', 'image']
    with pytest.raises(rb.RobustnessSpecError, match='valid: text, image'):
        rb.parse_drop_modality('audio')
    settings = rb.build_settings(
        ['text', 'image', 'text'],
        [('image_noise', [0.1, 0.5]), ('image_noise', [0.1]),
         ('image_blur', [0.05])], seed=7)
    assert [s.name for s in settings] == [
        'drop_text', 'drop_image', 'image_noise@0.1', 'image_noise@0.5',
        'image_blur@0.05']
    assert settings[2].transforms == [
        dict(type='ImageGaussianNoise', std=0.1, seed=7)]
    assert settings[4].transforms == [dict(type='ImageGaussianBlur',
                                           sigma=0.05)]
    for s in settings:  # every transform of a setting builds
        for t in s.transforms:
            build(t)


def test_cli_flags():
    from mmfusion.cli.test import parse_args
    args = parse_args(['cfg.yaml', 'x.pth', '--drop-modality', 'text',
                       '--drop-modality', 'image,text', '--corrupt',
                       'image_noise:0.1,0.5', '--corrupt', 'text_shuffle:1',
                       'test_dataloader.batch_size=4'])
    assert args.drop_modality == ['text', 'image', 'text']
    assert args.corrupt == [('image_noise', [0.1, 0.5]),
                            ('text_shuffle', [1.0])]
    assert args.overrides == ['test_dataloader.batch_size=4']
    plain = parse_args(['cfg.yaml', 'x.pth'])
    assert plain.drop_modality == [] and plain.corrupt == []


@pytest.mark.parametrize('flags, message', [
    (['--corrupt', 'bogus:0.1'], 'valid kinds: image_noise'),
    (['--corrupt', 'image_noise:big'], 'not a number'),
    (['--corrupt', 'text_word_drop:2'], 'out of range'),
    (['--drop-modality', 'audio'], 'unknown modality'),
])
def test_cli_bad_flags_exit_2(flags, message, capsys):
    from mmfusion.cli.test import parse_args
    with pytest.raises(SystemExit) as info:
        parse_args(['cfg.yaml', 'x.pth', *flags])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


# ------------------------------------------------------------- pipelines
def test_with_transforms_inserts_before_pack():
    pipeline = [dict(type='CachedLoadImageFromFile'),
                dict(type='mmfusion.PackMultimodalInputs')]
    loader = dict(batch_size=2, dataset=dict(
        type='ConcatDataset', datasets=[
            dict(type='A', pipeline=pipeline),
            dict(type='RepeatDataset', dataset=dict(type='B',
                                                     pipeline=pipeline))]))
    new = rb.with_transforms(loader, [dict(type='TextShuffle', prob=1)])
    for ds in (new['dataset']['datasets'][0],
               new['dataset']['datasets'][1]['dataset']):
        assert [t['type'] for t in ds['pipeline']] == [
            'CachedLoadImageFromFile', 'TextShuffle',
            'mmfusion.PackMultimodalInputs']
    assert len(pipeline) == 2  # the original is untouched
    with pytest.raises(rb.RobustnessSpecError, match='no packing'):
        rb.with_transforms(dict(dataset=dict(pipeline=pipeline[:1])),
                           [dict(type='TextShuffle', prob=1)])


# --------------------------------------------------------------- results
def test_robustness_metrics_and_plot(tmp_path):
    clean = {'accuracy': 0.6, 'auroc': 0.7, 'accuracy/colour': 0.5}
    results = {'drop_text': {'accuracy': 0.55, 'auroc': 0.6},
               'drop_image': {'accuracy': 0.7, 'auroc': 0.8},
               'image_noise@0.1': {'accuracy': 0.58},
               'image_noise@0.5': {'accuracy': 0.52}}
    flat = rb.robustness_metrics(clean, results)
    assert flat['accuracy'] == 0.6 and flat['accuracy/colour'] == 0.5
    assert flat['robust/drop_text/auroc'] == 0.6
    assert flat['robust/image_noise@0.5/accuracy'] == 0.52
    # A difference: negative when a unimodal use beats the full model.
    assert flat['robust/gain_over_best_unimodal'] == pytest.approx(-0.1)
    assert all(isinstance(v, float) for v in flat.values())
    del results['drop_image']
    assert 'robust/gain_over_best_unimodal' not in rb.robustness_metrics(
        clean, results)

    settings = rb.build_settings(['text'], [('image_noise', [0.1, 0.5])])
    png = rb.plot_robustness(clean, results, settings,
                             str(tmp_path / 'sub' / 'robustness.png'))
    with open(png, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_arg_type_wraps_errors():
    from mmfusion.cli.test import _arg_type, _parse_corrupt
    with pytest.raises(argparse.ArgumentTypeError, match='valid kinds'):
        _arg_type(_parse_corrupt)('nope:1')
