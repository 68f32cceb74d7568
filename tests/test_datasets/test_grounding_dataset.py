"""The ODVG grounding loader: samples per phrase, negatives, validation
errors naming the line, class modes, the packing transform and mmdet's own
ODVG loader on the same files."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mmfusion.datasets import GroundingDataset
from mmfusion.registry import TRANSFORMS


def write_image(path: Path, w: int = 40, h: int = 30) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((h, w, 3), dtype=np.uint8)).save(path)


def line(filename='images/a.png', regions=None, negatives=None, w=40, h=30,
         **extra) -> dict:
    grounding = {'caption': 'x.', 'regions': regions or []}
    if negatives is not None:
        grounding['negatives'] = negatives
    rec = {'filename': filename, 'height': h, 'width': w,
           'grounding': grounding}
    rec.update(extra)
    return rec


def write_jsonl(path: Path, records) -> Path:
    path.write_text(''.join((r if isinstance(r, str) else json.dumps(r))
                            + '\n' for r in records))
    return path


@pytest.fixture()
def folder(tmp_path) -> Path:
    write_image(tmp_path / 'images' / 'a.png')
    write_image(tmp_path / 'images' / 'b.png', 20, 20)
    return tmp_path


GOOD = [
    line(regions=[
        {'bbox': [1, 2, 11, 12], 'phrase': 'the red circles',
         'tokens_positive': [[0, 15]]},
        {'bbox': [[20, 2, 30, 12], [5, 15, 9, 29]],
         'phrase': 'the red circles', 'tokens_positive': [[0, 15]]},
        {'bbox': [0, 0, 40, 30], 'phrase': 'every shape',
         'tokens_positive': [[17, 28]], 'category': 'all'}],
        negatives=['the blue squares']),
    line('images/b.png', w=20, h=20,
         regions=[{'bbox': [0.5, 0.5, 19.5, 19.5], 'phrase': 'a dog',
                   'tokens_positive': [[0, 5]], 'category': 'dog'}]),
]


def test_one_sample_per_image_phrase(folder):
    ds = GroundingDataset(str(write_jsonl(folder / 'g.jsonl', GOOD)))
    assert len(ds) == 4
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    assert [i['text'] for i in infos] == [
        'the red circles', 'every shape', 'the blue squares', 'a dog']
    # Every (image, phrase) pair is its own COCO image.
    assert [i['img_id'] for i in infos] == [0, 1, 2, 3]
    assert len(infos[0]['instances']) == 3  # two regions, three boxes
    assert infos[0]['instances'][1]['bbox'] == [20.0, 2.0, 30.0, 12.0]
    assert all(ins['bbox_label'] == 0 for ins in infos[0]['instances'])
    assert ds.classes == ('referred', )
    assert infos[0]['img_path'] == str(folder / 'images' / 'a.png')
    assert (infos[0]['height'], infos[0]['width']) == (30, 40)
    assert ds.get_texts() == [i['text'] for i in infos]


def test_negative_has_no_targets(folder):
    ds = GroundingDataset(str(write_jsonl(folder / 'g.jsonl', GOOD)))
    neg = ds.get_data_info(2)
    assert neg['text'] == 'the blue squares' and neg['instances'] == []
    pipeline = [dict(type='LoadImageFromFile'),
                dict(_scope_='mmdet', type='LoadAnnotations', with_bbox=True),
                dict(type='PackDetTextInputs')]
    ds = GroundingDataset(str(folder / 'g.jsonl'), pipeline=pipeline)
    sample = ds[2]
    assert sample['inputs']['text'] == 'the blue squares'
    assert sample['inputs']['img'].shape == (3, 30, 40)
    assert sample['inputs']['img'].dtype == torch.uint8
    gt = sample['data_samples'].gt_instances
    assert len(gt.bboxes) == 0
    assert sample['data_samples'].metainfo['instances'] == []
    pos = ds[0]['data_samples']
    assert len(pos.gt_instances.bboxes) == 3
    assert pos.metainfo['img_id'] == 0 and pos.metainfo['text'] == \
        'the red circles'
    assert pos.metainfo['scale_factor'] == (1.0, 1.0)


def test_category_mode(folder):
    path = write_jsonl(folder / 'g.jsonl', GOOD)
    ds = GroundingDataset(str(path), class_mode='category')
    # Collected from the file, sorted; a region without category uses its
    # phrase.
    assert ds.classes == ('all', 'dog', 'the red circles')
    assert ds.get_cat_ids(1) == [0]
    (folder / 'classes.txt').write_text('the red circles\nall\n')
    with pytest.raises(ValueError, match=r'g\.jsonl:2.*dog'):
        GroundingDataset(str(path), class_mode='category',
                         classes_file=str(folder / 'classes.txt'))


def test_data_prefix_resolves_like_mmdet(folder):
    (folder / 'ann').mkdir()
    rec = line('a.png', regions=[{'bbox': [1, 1, 5, 5], 'phrase': 'p'}])
    path = write_jsonl(folder / 'ann' / 'g.jsonl', [rec])
    ds = GroundingDataset('ann/g.jsonl', data_root=str(folder),
                          data_prefix=dict(img='images'))
    assert ds.get_data_info(0)['img_path'] == str(folder / 'images/a.png')
    with pytest.raises(ValueError, match='not found'):
        GroundingDataset(str(path))  # relative to the jsonl folder: absent


BAD_LINES = {
    'invalid JSON': ('{"filename": ', 'invalid JSON'),
    'missing filename': ({'height': 30, 'width': 40, 'grounding': {
        'regions': []}}, 'missing key "filename"'),
    'missing image file': (line('images/nope.png'), 'not found'),
    'bad size': (line(h=0), '"height" must be a positive integer'),
    'box outside image': (line(regions=[
        {'bbox': [30, 2, 45, 12], 'phrase': 'p'}]), 'not inside'),
    'zero-area box': (line(regions=[
        {'bbox': [5, 5, 5, 12], 'phrase': 'p'}]), 'no area'),
    'xywh-looking box': (line(regions=[
        {'bbox': [10, 10, 5, 5], 'phrase': 'p'}]), 'no area'),
    'malformed box': (line(regions=[
        {'bbox': [1, 2, 3], 'phrase': 'p'}]), r'\[x1, y1, x2, y2\]'),
    'empty box list': (line(regions=[{'bbox': [], 'phrase': 'p'}]),
                       'negatives'),
    'empty phrase': (line(regions=[
        {'bbox': [1, 2, 11, 12], 'phrase': '  '}]), 'non-empty string'),
    'missing phrase': (line(regions=[{'bbox': [1, 2, 11, 12]}]),
                       'non-empty string'),
    'empty negative': (line(negatives=['']), r'negatives\[0\]'),
    'negative that matches': (line(regions=[
        {'bbox': [1, 2, 11, 12], 'phrase': 'p'}], negatives=['p']),
        'match nothing'),
}


@pytest.mark.parametrize('kind', sorted(BAD_LINES))
def test_bad_line_names_file_and_line(folder, kind):
    bad, message = BAD_LINES[kind]
    path = write_jsonl(folder / 'bad.jsonl', [GOOD[1], bad])
    with pytest.raises(ValueError, match=message) as err:
        GroundingDataset(str(path))
    assert f'{path}:2' in str(err.value)


def test_missing_ann_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='ODVG'):
        GroundingDataset(str(tmp_path / 'none.jsonl'))


def test_mmdet_odvg_loader_reads_our_files(folder):
    """Files with negatives still load in mmdet's own ODVG loader (which
    ignores them), and mmdet-style regions load here."""
    from mmdet.datasets import ODVGDataset
    path = write_jsonl(folder / 'g.jsonl', GOOD)
    theirs = ODVGDataset(data_root=str(folder), ann_file='g.jsonl',
                         data_prefix=dict(img=''), pipeline=[],
                         return_classes=True)
    assert len(theirs) == 2  # one per image; negatives dropped
    assert len(theirs.get_data_info(0)['instances']) == 4
    # tokens_positive and caption (which mmdet needs) are optional here.
    rec = line(regions=[{'bbox': [1, 1, 5, 5], 'phrase': 'p'}])
    del rec['grounding']['caption']
    ours = GroundingDataset(str(write_jsonl(folder / 'h.jsonl', [rec])))
    assert len(ours) == 1


def test_packing_keeps_presence_flags(folder):
    pack = TRANSFORMS.build(dict(type='PackDetTextInputs'))
    results = dict(img=np.zeros((4, 5, 3), dtype=np.uint8), text='p',
                   text_present=False, img_id=3, img_shape=(4, 5),
                   ori_shape=(4, 5))
    out = pack(results)
    assert out['inputs']['text'] == 'p'
    assert out['inputs']['text_present'] is False
    assert out['data_samples'].metainfo['img_id'] == 3
