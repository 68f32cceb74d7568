"""MultimodalClsDataset: the jsonl format, its checks, and the pipeline."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope
from PIL import Image

from mmfusion.registry import DATASETS
from mmfusion.structures import MultimodalDataSample


def write_png(path: Path, rgb=(255, 0, 0), size=(6, 4)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new('RGB', size, rgb).save(path)


def write_jsonl(path: Path, lines: List) -> Path:
    path.write_text(''.join((line if isinstance(line, str) else
                             json.dumps(line)) + '\n' for line in lines))
    return path


@pytest.fixture()
def folder(tmp_path) -> Path:
    write_png(tmp_path / 'images' / 'a.png', (255, 0, 0))
    write_png(tmp_path / 'images' / 'b.png', (0, 0, 255))
    (tmp_path / 'classes.txt').write_text('no\nyes\n\n')
    return tmp_path


def build(ann_file, **kwargs):
    init_default_scope('mmfusion')
    return DATASETS.build(dict(type='MultimodalClsDataset',
                               ann_file=str(ann_file), **kwargs))


def test_load(folder):
    ann = write_jsonl(folder / 'train.jsonl', [
        {'image': 'images/a.png', 'text': 'is it red?', 'label': 'yes',
         'question_type': 'colour'},
        {'image': 'images/b.png', 'text': None, 'label': 'no'},
        '',  # blank lines are skipped
    ])
    ds = build(ann)
    assert len(ds) == 2
    assert ds.metainfo['classes'] == ('no', 'yes')
    first, second = ds.get_data_info(0), ds.get_data_info(1)
    assert first == {'img_path': str(folder / 'images' / 'a.png'),
                     'text': 'is it red?', 'gt_label': 1,
                     'question_type': 'colour', 'ann_line': 1,
                     'sample_idx': 0}
    assert second['text'] is None and second['question_type'] is None
    assert second['gt_label'] == 0 and second['sample_idx'] == 1
    assert ds.get_texts() == ['is it red?']


def test_data_root_and_classes_file(folder):
    write_jsonl(folder / 'ann.jsonl', [
        {'image': 'images/a.png', 'text': 'x?', 'label': 'cat'}])
    (folder / 'animals.txt').write_text('cat\ndog\n')
    ds = build('ann.jsonl', data_root=str(folder), classes_file='animals.txt',
               lazy_init=True)
    assert ds.metainfo['classes'] == ('cat', 'dog')
    ds.full_init()
    assert ds.get_data_info(0)['gt_label'] == 0
    # classes from metainfo instead of a file
    ds = build(folder / 'ann.jsonl',
               metainfo=dict(classes=['dog', 'cat']))
    assert ds.get_data_info(0)['gt_label'] == 1


def test_multi_label(folder):
    (folder / 'classes.txt').write_text('red\nblue\ngreen\n')
    ann = write_jsonl(folder / 'ml.jsonl', [
        {'image': 'images/a.png', 'text': 'a', 'label': ['green', 'red']},
        {'image': 'images/b.png', 'text': 'b', 'label': []},
    ])
    ds = build(ann)
    info = ds.get_data_info(0)
    assert info['gt_label'] == [0, 2] and info['num_classes'] == 3
    assert ds.get_data_info(1)['gt_label'] == []


@pytest.mark.parametrize('line, match', [
    ('{"image": "images/a.png", "text": "x?", ', 'invalid JSON'),
    ({'image': 'images/missing.png', 'text': 'x?', 'label': 'yes'},
     r'image file .*missing\.png not found'),
    ({'image': 'images/a.png', 'text': 'x?', 'label': 'maybe'},
     r"unknown label 'maybe'.*\['no', 'yes'\]"),
    ({'image': 'images/a.png', 'text': '', 'label': 'yes'},
     'empty string; use null'),
    ({'image': 'images/a.png', 'text': ' \t ', 'label': 'yes'},
     'empty string; use null'),
    ({'image': 'images/a.png', 'text': 3, 'label': 'yes'},
     'must be a string or null'),
    ({'image': 'images/a.png', 'label': 'yes'}, 'missing key "text"'),
    ({'image': 'images/a.png', 'text': 'x?', 'label': ['yes', 'perhaps']},
     'unknown label'),
    ('[1, 2]', 'expected a JSON object'),
])
def test_errors_name_file_and_line(folder, line, match):
    good = {'image': 'images/a.png', 'text': 'ok?', 'label': 'no'}
    ann = write_jsonl(folder / 'bad.jsonl', [good, good, line])
    with pytest.raises(ValueError, match=match) as info:
        build(ann)
    assert f'{ann}:3:' in str(info.value)


def test_missing_files(folder):
    with pytest.raises(FileNotFoundError, match='annotation file'):
        build(folder / 'nope.jsonl')
    (folder / 'sub').mkdir()
    ann = write_jsonl(folder / 'sub' / 'x.jsonl', [])
    with pytest.raises(FileNotFoundError, match='classes file'):
        build(ann)


def test_pipeline(folder):
    pytest.importorskip('mmcv.transforms')
    ann = write_jsonl(folder / 'train.jsonl', [
        {'image': 'images/a.png', 'text': 'is it red?', 'label': 'yes',
         'question_type': 'colour'},
        {'image': 'images/b.png', 'text': None, 'label': 'no'},
    ])
    ds = build(ann, pipeline=[dict(type='LoadImageFromFile'),
                              dict(type='PackMultimodalInputs')])
    out = ds[0]
    img = out['inputs']['img']
    assert isinstance(img, torch.Tensor) and img.dtype == torch.uint8
    assert img.shape == (3, 4, 6)
    # BGR as loaded by mmcv: red is in the last channel.
    assert img[2].eq(255).all() and img[0].eq(0).all()
    assert out['inputs']['text'] == 'is it red?'
    sample = out['data_samples']
    assert isinstance(sample, MultimodalDataSample)
    assert sample.gt_label.dtype == torch.long
    assert sample.gt_label.tolist() == [1]
    assert sample.question_type == 'colour' and sample.sample_idx == 0
    assert sample.img_path == str(folder / 'images' / 'a.png')
    assert sample.ori_shape == (4, 6) and sample.img_shape == (4, 6)
    assert ds[1]['inputs']['text'] is None


def test_pack_multi_label_and_absent_image():
    pytest.importorskip('mmcv.transforms')
    init_default_scope('mmfusion')
    from mmfusion.registry import TRANSFORMS
    pack = TRANSFORMS.build(dict(type='PackMultimodalInputs'))
    out = pack({'gt_label': [0, 2], 'num_classes': 4, 'text': 'hi'})
    assert out['inputs']['img'] is None
    assert out['data_samples'].gt_label.tolist() == [1.0, 0.0, 1.0, 0.0]
    assert out['data_samples'].gt_label.dtype == torch.float32
    pack = TRANSFORMS.build(dict(type='PackMultimodalInputs', num_classes=3))
    img = np.zeros((5, 7), dtype=np.uint8)  # grey: gets a channel axis
    out = pack({'img': img, 'gt_label': [1]})
    assert out['inputs']['img'].shape == (1, 5, 7)
    assert out['data_samples'].gt_label.tolist() == [0.0, 1.0, 0.0]
    # Non-contiguous (e.g. a flipped view) is handled.
    out = pack({'img': np.zeros((4, 6, 3), np.uint8)[:, ::-1],
                'gt_label': 1})
    assert out['inputs']['img'].shape == (3, 4, 6)
    assert out['data_samples'].gt_label.tolist() == [1]
    with pytest.raises(ValueError, match='num_classes'):
        TRANSFORMS.build(dict(type='PackMultimodalInputs'))(
            {'gt_label': [0]})
    assert 'meta_keys' in repr(pack)


def test_null_text_is_an_absent_modality(folder):
    """``"text": null`` loads, is skipped by the tokenizer fit, and reaches
    the model as ``text_present`` False with zero text features."""
    pytest.importorskip('mmcv.transforms')
    from mmengine.dataset import pseudo_collate

    from mmfusion.engine.hooks.tokenizer_hook import dataset_texts
    from mmfusion.registry import MODELS
    ann = folder / 'null.jsonl'
    ann.write_text(
        '{"image": "images/a.png", "text": "is it red?", "label": "yes"}\n'
        '{"image": "images/b.png", "text": null, "label": "no"}\n')
    ds = build(ann, pipeline=[dict(type='LoadImageFromFile'),
                              dict(type='PackMultimodalInputs')])
    assert dataset_texts(ds) == ['is it red?']
    pre = MODELS.build(dict(type='MultimodalDataPreprocessor',
                            tokenizer=dict(type='VocabTokenizer')))
    pre.tokenizer.fit(dataset_texts(ds))
    assert pre.tokenizer.vocab[2:] == ['?', 'is', 'it', 'red']
    data = pre(pseudo_collate([ds[0], ds[1]]), False)
    assert data['inputs']['text_present'].tolist() == [True, False]
    assert data['inputs']['image_present'].tolist() == [True, True]
    assert not data['inputs']['text_mask'][1].any()
    encoder = MODELS.build(dict(type='RNNTextEncoder', vocab_size=10,
                                embed_dims=8, hidden_dims=4))
    feats = encoder(data['inputs']['text_ids'], data['inputs']['text_mask'],
                    data['inputs']['text_present'])
    assert feats.pooled[1].abs().sum() == 0
    assert feats.pooled[0].abs().sum() > 0
