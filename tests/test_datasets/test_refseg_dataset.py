"""RefSegDataset: the documented jsonl format, checks that name the line,
the packing transform and the segmentation preprocessor."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from PIL import Image

from mmfusion.datasets import RefSegDataset
from mmfusion.registry import MODELS

PIPELINE = [dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', _scope_='mmseg'),
            dict(type='PackMultimodalSegInputs')]


def make_data(root: Path, lines=None, size=(12, 8)) -> Path:
    """Two images (W x H = ``size``) and three phrases, one image shared."""
    (root / 'images').mkdir(parents=True, exist_ok=True)
    (root / 'masks').mkdir(exist_ok=True)
    w, h = size
    rng = np.random.default_rng(0)
    for name in ('a', 'b'):
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
                        ).save(root / 'images' / f'{name}.png')
    for name in ('a_dog', 'a_cat', 'b_dog'):
        mask = np.zeros((h, w), np.uint8)
        mask[1:4, 2:6] = 1
        mask[0, 0] = 255
        Image.fromarray(mask).save(root / 'masks' / f'{name}.png')
    if lines is None:
        lines = [
            {'image': 'images/a.png', 'text': 'the dog',
             'mask': 'masks/a_dog.png', 'label': 'one'},
            {'image': 'images/a.png', 'text': 'the cat',
             'mask': 'masks/a_cat.png', 'phrase_type': 'animal'},
            {'image': 'images/b.png', 'text': 'a dog',
             'mask': 'masks/b_dog.png'},
        ]
    ann = root / 'train.jsonl'
    ann.write_text(''.join((line if isinstance(line, str) else
                            json.dumps(line)) + '\n' for line in lines))
    return ann


def test_loads_documented_format(tmp_path):
    ann = make_data(tmp_path)
    ds = RefSegDataset(str(ann), pipeline=PIPELINE)
    assert len(ds) == 3 and ds.classes == ('background', 'referred')
    assert ds.get_texts() == ['the dog', 'the cat', 'a dog']
    info = ds.get_data_info(1)
    assert info['img_path'] == str(tmp_path / 'images' / 'a.png')
    assert info['seg_map_path'] == str(tmp_path / 'masks' / 'a_cat.png')
    assert info['phrase_type'] == 'animal' and info['gt_label'] is None
    sample = ds[0]
    assert sample['inputs']['img'].shape == (3, 8, 12)
    assert sample['inputs']['text'] == 'the dog'
    seg = sample['data_samples'].gt_sem_seg.data
    assert seg.shape == (1, 8, 12) and seg.dtype == torch.long
    assert set(seg.unique().tolist()) == {0, 1, 255}
    assert sample['data_samples'].metainfo['text'] == 'the dog'
    assert ds.metainfo['palette'][0] == [0, 0, 0]


def test_label_classes_and_missing_masks(tmp_path):
    ann = make_data(tmp_path, lines=[
        {'image': 'images/a.png', 'text': 'the dog', 'mask': None,
         'label': 'two'},
        {'image': 'images/b.png', 'text': 'a dog', 'mask': 'masks/b_dog.png'},
    ])
    with pytest.raises(ValueError, match=r'train.jsonl:1: "mask" is null'):
        RefSegDataset(str(ann))
    ds = RefSegDataset(str(ann), label_classes=['one', 'two'],
                       allow_missing_mask=True,
                       pipeline=[dict(type='LoadImageFromFile'),
                                 dict(type='LoadOptionalAnnotations'),
                                 dict(type='PackMultimodalSegInputs')])
    assert ds.get_data_info(0)['gt_label'] == 1
    first, second = ds[0]['data_samples'], ds[1]['data_samples']
    assert 'gt_sem_seg' not in first and first.gt_label.tolist() == [1]
    assert 'gt_sem_seg' in second and 'gt_label' not in second


def test_per_class_masks(tmp_path):
    ann = make_data(tmp_path)
    mask = np.zeros((8, 12), np.uint8)
    mask[2:5, 3:7] = 2
    Image.fromarray(mask).save(tmp_path / 'masks' / 'a_dog.png')
    with pytest.raises(ValueError, match=r'train.jsonl:1: .*values \[2\]'):
        RefSegDataset(str(ann))
    ds = RefSegDataset(str(ann), classes=['background', 'dog', 'cat'])
    assert len(ds.metainfo['palette']) == 3


@pytest.mark.parametrize('line,message', [
    ('{"image": "images/a.png", "text": "x"', r':1: invalid JSON'),
    ('[1, 2]', r':1: expected a JSON object'),
    ({'image': 'images/a.png', 'text': 'x'}, r':1: missing key "mask"'),
    ({'image': 'images/a.png', 'text': '  ', 'mask': 'masks/a_dog.png'},
     r':1: "text" must be a non-empty phrase'),
    ({'image': 'images/zz.png', 'text': 'x', 'mask': 'masks/a_dog.png'},
     r':1: image file .*zz.png not found'),
    ({'image': 'images/a.png', 'text': 'x', 'mask': 'masks/zz.png'},
     r':1: mask file .*zz.png not found'),
    ({'image': 'images/a.png', 'text': 'x', 'mask': 'masks/bad.png'},
     r':1: .*values \[7\]; allowed are \{0, 1, 255\}'),
    ({'image': 'images/a.png', 'text': 'x', 'mask': 'masks/small.png'},
     r':1: mask .*small.png is 6x8 but its image is 12x8'),
    ({'image': 'images/a.png', 'text': 'x', 'mask': 'masks/rgb.png'},
     r':1: mask .*rgb.png has mode RGB'),
    ({'image': 'images/a.png', 'text': 'x', 'mask': 'masks/a_dog.png',
      'label': 'seven'}, r':1: unknown label'),
])
def test_errors_name_the_line(tmp_path, line, message):
    make_data(tmp_path)
    bad = np.zeros((8, 12), np.uint8)
    bad[0, 0] = 7
    Image.fromarray(bad).save(tmp_path / 'masks' / 'bad.png')
    Image.fromarray(np.zeros((8, 6), np.uint8)).save(
        tmp_path / 'masks' / 'small.png')
    Image.fromarray(np.zeros((8, 12, 3), np.uint8)).save(
        tmp_path / 'masks' / 'rgb.png')
    good = {'image': 'images/b.png', 'text': 'ok', 'mask': 'masks/b_dog.png'}
    # The bad line is line 2 here: errors must name it.
    ann = make_data(tmp_path, lines=[good, line])
    message = message.replace(':1:', ':2:')
    with pytest.raises(ValueError, match=message):
        RefSegDataset(str(ann), label_classes=['one'])


def test_skip_bad_samples(tmp_path):
    make_data(tmp_path)
    good = {'image': 'images/b.png', 'text': 'ok', 'mask': 'masks/b_dog.png'}
    bad = {'image': 'images/nope.png', 'text': 'x', 'mask': 'masks/b_dog.png'}
    ann = make_data(tmp_path, lines=[good, bad, good, good])
    ds = RefSegDataset(str(ann), skip_bad_samples=True, max_bad_fraction=0.5)
    assert len(ds) == 3 and len(ds.bad_samples) == 1
    assert 'train.jsonl:2' in ds.bad_samples[0]
    assert [ds.get_data_info(i)['ann_line'] for i in range(3)] == [1, 3, 4]
    with pytest.raises(ValueError, match='more than max_bad_fraction'):
        RefSegDataset(str(ann), skip_bad_samples=True)


def test_missing_annotation_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='jsonl'):
        RefSegDataset(str(tmp_path / 'none.jsonl'))


def test_preprocessor_pads_masks_and_records_padding(tmp_path):
    """Training masks are padded with their image (255); the padding is
    recorded so predictions are cropped back to each image."""
    make_data(tmp_path)
    Image.fromarray(np.zeros((10, 16, 3), np.uint8)).save(
        tmp_path / 'images' / 'big.png')
    Image.fromarray(np.ones((10, 16), np.uint8)).save(
        tmp_path / 'masks' / 'big.png')
    ann = make_data(tmp_path, lines=[
        {'image': 'images/a.png', 'text': 'the dog',
         'mask': 'masks/a_dog.png'},
        {'image': 'images/big.png', 'text': 'all', 'mask': 'masks/big.png'}])
    ds = RefSegDataset(str(ann), pipeline=PIPELINE)
    pre = MODELS.build(dict(type='MultimodalSegDataPreprocessor',
                            tokenizer=dict(type='VocabTokenizer')))
    pre.tokenizer.fit(ds.get_texts())
    out = pre(pseudo_collate([ds[0], ds[1]]), True)
    assert out['inputs']['img'].shape == (2, 3, 10, 16)
    small, big = out['data_samples']
    assert small.gt_sem_seg.data.shape == (1, 10, 16)
    assert (small.gt_sem_seg.data[0, 8:] == 255).all()
    assert (small.gt_sem_seg.data[0, :, 12:] == 255).all()
    assert small.metainfo['padding_size'] == (0, 4, 0, 2)
    assert big.metainfo['padding_size'] == (0, 0, 0, 0)
    # Evaluation: masks stay at their size, padding is still recorded.
    out = pre(pseudo_collate([ds[0], ds[1]]), False)
    assert out['data_samples'][0].gt_sem_seg.data.shape == (1, 8, 12)
    assert out['data_samples'][0].metainfo['padding_size'] == (0, 4, 0, 2)
