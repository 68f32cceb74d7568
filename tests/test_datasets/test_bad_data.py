"""A defined outcome for each kind of bad classification data (the table in
docs/reliability.md), and the skip-bad-samples option."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import List

import numpy as np
import pytest
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from PIL import Image

from mmfusion.datasets.bad_samples import DataError
from mmfusion.registry import DATASETS

PIPELINE = [dict(type='CachedLoadImageFromFile'),
            dict(type='PackMultimodalInputs')]


def _line(image='images/ok.png', text='is it red?', label='yes', **kw):
    return {'image': image, 'text': text, 'label': label, **kw}


def _write(folder: Path, lines: List) -> Path:
    path = folder / 'ann.jsonl'
    path.write_text(''.join((x if isinstance(x, str) else json.dumps(x))
                            + '\n' for x in lines), encoding='utf-8')
    return path


def _build(ann: Path, **kwargs):
    init_default_scope('mmfusion')
    return DATASETS.build(dict(type='MultimodalClsDataset', ann_file=str(ann),
                               pipeline=PIPELINE, **kwargs))


@pytest.fixture()
def folder(tmp_path) -> Path:
    images = tmp_path / 'images'
    images.mkdir()
    Image.new('RGB', (8, 6), (255, 0, 0)).save(images / 'ok.png')
    Image.new('L', (8, 6), 128).save(images / 'gray.png')
    Image.new('RGBA', (8, 6), (0, 255, 0, 100)).save(images / 'rgba.png')
    Image.new('RGB', (8, 6), (0, 0, 255)).convert('P').save(
        images / 'palette.png')
    Image.fromarray(np.full((6, 8), 40000, dtype=np.uint16)).save(
        images / 'deep.png')
    (images / 'corrupt.png').write_bytes(b'\x89PNG\r\n\x1a\nnot an image')
    whole = (images / 'ok.png').read_bytes()
    (images / 'cut.png').write_bytes(whole[:len(whole) // 2])
    Image.new('RGB', (32, 32), (9, 9, 9)).save(images / 'ok.jpg')
    jpeg = (images / 'ok.jpg').read_bytes()
    (images / 'cut.jpg').write_bytes(jpeg[:len(jpeg) - 40])
    (tmp_path / 'classes.txt').write_text('no\nyes\n')
    return tmp_path


# -------------------------------------------------------------- one per row
def test_missing_image_names_file_line_and_path(folder):
    ann = _write(folder, [_line(), _line(image='images/gone.png')])
    with pytest.raises(DataError) as info:
        _build(ann)
    assert f'{ann}:2:' in str(info.value)
    assert str(folder / 'images' / 'gone.png') in str(info.value)


@pytest.mark.parametrize('name', ['corrupt.png', 'cut.png', 'cut.jpg'])
def test_corrupt_or_truncated_image_names_file_line_and_path(folder, name):
    ann = _write(folder, [_line(), _line(), _line(image=f'images/{name}')])
    ds = _build(ann)  # existence is checked when built ...
    ds[0]
    with pytest.raises(DataError) as info:
        ds[2]  # ... decoding when loaded
    msg = str(info.value)
    assert f'{ann}:3' in msg and str(folder / 'images' / name) in msg
    # check_images='decode' finds it while the dataset is built instead.
    with pytest.raises(DataError, match=f'{ann}:3: image .*{name}'):
        _build(ann, check_images='decode')


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)

    def __enter__(self):
        MMLogger.get_current_instance().addHandler(self)
        return self

    def __exit__(self, *exc):
        MMLogger.get_current_instance().removeHandler(self)


def test_odd_image_modes_become_rgb_logged_once(folder):
    ann = _write(folder, [_line(image=f'images/{n}.png') for n in
                          ('ok', 'gray', 'rgba', 'palette', 'deep')])
    ds = _build(ann)
    with _Records() as caplog:
        imgs = [ds[i]['inputs']['img'] for i in range(len(ds))]
        ds[1]  # again: still one message
    for img in imgs:
        assert img.shape == (3, 6, 8) and str(img.dtype) == 'torch.uint8'
    assert imgs[4].float().mean() > 100  # 16-bit scaled, not clipped to 0
    notes = [r for r in caplog.records if 'converted to 3-channel' in
             r.getMessage()]
    assert len(notes) == 1 and 'grayscale' in notes[0].getMessage()


def test_non_latin_text_is_tokenised_with_unknown_words():
    from mmfusion.models.tokenizers import VocabTokenizer
    tok = VocabTokenizer(max_length=8).fit(['is the cube red ?'])
    ids, mask = tok.encode(['is the 立方体 rouge? кубик',
                            'هل المكعب red'])
    assert mask[0].sum() == 6 and mask[1].sum() == 3
    assert ids[0, 0] == tok.token_to_id('is')
    assert ids[0, 2] == tok.unk_id and ids[1, 0] == tok.unk_id
    assert ids[1, 2] == tok.token_to_id('red')


def test_non_latin_text_loads(folder):
    ann = _write(folder, [_line(text='这是红色的吗？'),
                          _line(text='أحمر؟')])
    ds = _build(ann)
    assert ds[0]['inputs']['text'] == '这是红色的吗？'


def test_very_long_text_is_truncated(folder):
    from mmfusion.models.tokenizers import VocabTokenizer
    text = 'red ' * 25000  # 100,000 characters
    ann = _write(folder, [_line(text=text)])
    assert _build(ann)[0]['inputs']['text'] == text
    tok = VocabTokenizer(max_length=32).fit(['red'])
    ids, mask = tok.encode([text])
    assert ids.shape == (1, 32) and bool(mask.all())


def test_null_text_is_a_missing_modality(folder):
    from mmengine.dataset import pseudo_collate

    from mmfusion.registry import MODELS
    ann = _write(folder, [_line(text=None), _line()])
    ds = _build(ann)
    assert ds[0]['inputs']['text'] is None
    pre = MODELS.build(dict(type='MultimodalDataPreprocessor',
                            tokenizer=dict(type='VocabTokenizer'),
                            bgr_to_rgb=True))
    pre.tokenizer.fit(ds.get_texts())
    batch = pre(pseudo_collate([ds[0], ds[1]]))
    assert batch['inputs']['text_present'].tolist() == [False, True]


@pytest.mark.parametrize('text', ['', '   \t '])
def test_empty_text_names_file_and_line(folder, text):
    ann = _write(folder, [_line(), _line(text=text)])
    with pytest.raises(DataError, match=f'{ann}:2: "text" is an empty'):
        _build(ann)


def test_unknown_label_names_file_line_and_classes(folder):
    ann = _write(folder, [_line(label='maybe')])
    with pytest.raises(DataError, match=rf"{ann}:1: unknown label "
                       r"'maybe'.*\['no', 'yes'\]"):
        _build(ann)


@pytest.mark.parametrize('bad', ['{"image": "images/ok.png", "text": ',
                                 'not json at all', '["a", "list"]'])
def test_malformed_jsonl_names_file_and_line(folder, bad):
    ann = _write(folder, [_line(), _line(), bad])
    with pytest.raises(DataError, match=f'{ann}:3: '):
        _build(ann)


def test_not_utf8_names_file_and_line(folder):
    ann = folder / 'ann.jsonl'
    ann.write_bytes(json.dumps(_line()).encode() + b'\n' +
                    b'{"image": "images/ok.png", "text": "\xff\xfe", '
                    b'"label": "yes"}\n')
    with pytest.raises(DataError, match=f'{ann}:2: not UTF-8'):
        _build(ann)


def test_no_samples_fails_when_built(folder):
    ann = _write(folder, ['', '  '])
    with pytest.raises(DataError, match='no samples'):
        _build(ann)


def test_all_image_paths_missing_fails_when_built(folder):
    ann = _write(folder, [_line(image=f'pics/{i}.png') for i in range(5)])
    with pytest.raises(DataError, match='none of the 5 image paths exist'):
        _build(ann)
    with pytest.raises(DataError, match='none of the 5 image paths exist'):
        _build(ann, skip_bad_samples=True, max_bad_fraction=1.0)
    ann = _write(folder, [_line(label='maybe')] * 3)
    with pytest.raises(DataError, match='all 3 samples are bad'):
        _build(ann, skip_bad_samples=True, max_bad_fraction=1.0)


# ------------------------------------------------------- skip bad samples
def _mixed(folder, n_good=200):
    bad = [_line(image='images/gone.png'), _line(label='maybe'), '{oops',
           _line(text='')]
    return _write(folder, [_line()] * n_good + bad), len(bad)


def test_skip_bad_samples_logs_each_once_and_counts(folder):
    ann, n_bad = _mixed(folder)
    with _Records() as caplog:
        ds = _build(ann, skip_bad_samples=True, max_bad_fraction=0.05)
    assert len(ds) == 200
    skipped = [r.getMessage() for r in caplog.records
               if 'skipping a bad sample' in r.getMessage()]
    assert len(skipped) == n_bad
    assert all(f'{ann}:' in m for m in skipped)
    assert ds.bad_sample_summary().startswith(
        f'{ann}: 4 bad samples skipped of 204')


def test_skip_refused_above_max_fraction(folder):
    ann, _ = _mixed(folder)  # 4 of 204 = 1.96% > the default 1%
    with pytest.raises(DataError, match=r'4 of 204 samples are bad '
                       r'\(1\.96%\), more than max_bad_fraction=0\.01'):
        _build(ann, skip_bad_samples=True)


def test_skip_replaces_undecodable_sample_in_training(folder):
    ann = _write(folder, [_line()] * 99 + [_line(image='images/cut.png')])
    ds = _build(ann, skip_bad_samples=True)
    out = ds[99]  # replaced by another (good) sample
    assert out['inputs']['img'].shape == (3, 6, 8)
    assert list(ds.bad_loads) == [99]
    assert 'when loaded' in ds.bad_sample_summary()
    test_ds = _build(ann, skip_bad_samples=True, test_mode=True)
    with pytest.raises(DataError, match="check_images='decode'"):
        test_ds[99]  # never silently replaced in evaluation


def test_report_hook_logs_counts_at_the_end(folder):
    from types import SimpleNamespace

    from mmengine.runner.base_loop import BaseLoop

    from mmfusion.engine.hooks import BadSampleReportHook
    ann, _ = _mixed(folder)
    ds = _build(ann, skip_bad_samples=True, max_bad_fraction=0.05)

    class Loop(BaseLoop):
        def run(self):
            pass

    messages = []
    runner = SimpleNamespace(
        _train_loop=Loop(None, SimpleNamespace(dataset=ds)),
        logger=SimpleNamespace(warning=messages.append))
    BadSampleReportHook().after_run(runner)
    assert messages and '4 bad samples skipped of 204' in messages[0]
