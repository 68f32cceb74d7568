"""coco_to_grounding and yolo_to_grounding: tiny fixtures made here, the
commands in real processes, and coco128-seg read in place."""
from __future__ import annotations

import json
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import shared_data
from mmfusion.datasets import GroundingDataset
from mmfusion.datasets.converters import (coco_to_grounding,
                                          parse_label_line,
                                          yolo_to_grounding)

ROOT = Path(__file__).resolve().parents[2]


def write_image(path: Path, w: int, h: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((h, w, 3), dtype=np.uint8)).save(path)


def read_jsonl(path: Path):
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.fixture()
def coco(tmp_path) -> Path:
    write_image(tmp_path / 'imgs' / '1.jpg', 100, 80)
    write_image(tmp_path / 'imgs' / '2.jpg', 50, 50)
    ann = {
        'images': [{'id': 1, 'file_name': '1.jpg', 'width': 100,
                    'height': 80},
                   {'id': 2, 'file_name': '2.jpg', 'width': 50,
                    'height': 50}],
        'categories': [{'id': 1, 'name': 'person'}, {'id': 3, 'name': 'dog'},
                       {'id': 7, 'name': 'cat'}],
        'annotations': [
            {'id': 1, 'image_id': 1, 'category_id': 1,
             'bbox': [10, 10, 20, 30], 'iscrowd': 0},
            {'id': 2, 'image_id': 1, 'category_id': 1,
             'bbox': [90, 70, 20, 20], 'iscrowd': 0},  # clipped to 10 x 10
            {'id': 3, 'image_id': 1, 'category_id': 3,
             'bbox': [5, 5, 10, 10], 'iscrowd': 1},  # crowd: left out
            {'id': 4, 'image_id': 1, 'category_id': 7,
             'bbox': [200, 5, 10, 10], 'iscrowd': 0},  # outside: dropped
        ]}
    (tmp_path / 'ann').mkdir()
    path = tmp_path / 'ann' / 'instances.json'
    path.write_text(json.dumps(ann))
    return path


def test_coco_to_grounding(coco, tmp_path):
    out = tmp_path / 'out' / 'g.jsonl'
    stats = coco_to_grounding(str(coco), str(out),
                              img_dir=str(tmp_path / 'imgs'))
    assert stats == {'images': 2, 'boxes': 2, 'samples': 6, 'negatives': 5,
                     'crowd_skipped': 1, 'empty_boxes_skipped': 1}
    first, second = read_jsonl(out)
    assert first['filename'] == '../imgs/1.jpg'
    assert (first['height'], first['width']) == (80, 100)
    regions = first['grounding']['regions']
    assert [r['phrase'] for r in regions] == ['person', 'person']
    assert regions[0]['bbox'] == [10, 10, 30, 40]
    assert regions[1]['bbox'] == [90, 70, 100, 80]
    assert first['grounding']['negatives'] == ['dog', 'cat']
    caption = first['grounding']['caption']
    start, end = regions[0]['tokens_positive'][0]
    assert caption[start:end] == 'person'
    assert second['grounding']['regions'] == []
    assert second['grounding']['negatives'] == ['person', 'dog', 'cat']
    ds = GroundingDataset(str(out))
    assert [ds.get_data_info(i)['text'] for i in range(len(ds))] == [
        'person', 'dog', 'cat', 'person', 'dog', 'cat']
    assert len(ds.get_data_info(0)['instances']) == 2
    cats = GroundingDataset(str(out), class_mode='category',
                            metainfo=dict(classes=['person', 'dog', 'cat']))
    assert cats.get_cat_ids(0) == [0, 0]


def test_coco_max_negatives_and_missing_images(coco, tmp_path):
    out = tmp_path / 'g.jsonl'
    coco_to_grounding(str(coco), str(out), img_dir=str(tmp_path / 'imgs'),
                      max_negatives=1, seed=0)
    assert all(len(r['grounding']['negatives']) <= 1
               for r in read_jsonl(out))
    with pytest.raises(FileNotFoundError, match='--img-dir'):
        coco_to_grounding(str(coco), str(out))  # images not beside the json


@pytest.fixture()
def yolo(tmp_path) -> Path:
    root = tmp_path / 'yolo'
    write_image(root / 'images' / 'train' / 'a.jpg', 100, 50)
    write_image(root / 'images' / 'train' / 'b.png', 40, 40)  # no labels
    (root / 'labels' / 'train').mkdir(parents=True)
    (root / 'labels' / 'train' / 'a.txt').write_text(
        '0 0.5 0.5 0.2 0.4\n'                       # box
        '2 0.1 0.1 0.3 0.1 0.3 0.5 0.1 0.5\n'       # polygon
        '\n')
    (root / 'labels' / 'train' / 'orphan.txt').write_text('1 0.5 0.5 .1 .1\n')
    (root / 'classes.txt').write_text('person\nbicycle\ncar\n')
    return root


def test_yolo_to_grounding(yolo, tmp_path):
    out = tmp_path / 'g.jsonl'
    stats = yolo_to_grounding(str(yolo), str(out))
    assert stats['images'] == 2 and stats['boxes'] == 2
    assert stats['images_without_labels'] == 1
    assert stats['labels_without_image'] == 1
    a, b = read_jsonl(out)
    assert a['filename'] == 'yolo/images/train/a.jpg'
    boxes = {r['phrase']: r['bbox'] for r in a['grounding']['regions']}
    assert boxes['person'] == [40, 15, 60, 35]
    assert boxes['car'] == [10, 5, 30, 25]
    assert a['grounding']['negatives'] == ['bicycle']
    assert b['grounding']['regions'] == []
    assert b['grounding']['negatives'] == ['person', 'bicycle', 'car']
    ds = GroundingDataset(str(out))
    assert len(ds) == 6


@pytest.mark.parametrize('text,message', [
    ('0 0.5 0.5 0.2', '5 values'),
    ('0 0.1 0.1 0.2 0.2 0.3 0.3 0.4', 'values'),
    ('7 0.5 0.5 0.2 0.2', 'class 7'),
    ('0 a 0.5 0.2 0.2', 'not numbers'),
])
def test_yolo_bad_line_names_file_and_line(yolo, tmp_path, text, message):
    (yolo / 'labels' / 'train' / 'a.txt').write_text(
        '0 0.5 0.5 0.2 0.4\n' + text + '\n')
    with pytest.raises(ValueError, match=message) as err:
        yolo_to_grounding(str(yolo), str(tmp_path / 'g.jsonl'))
    assert 'a.txt:2' in str(err.value)


def test_parse_label_line_clips():
    assert parse_label_line('0 0.95 0.5 0.2 0.2', 'x', 1, 10, 10) == \
        (0, (8.5, 4.0, 10.0, 6.0))


@pytest.mark.parametrize('tool', ['coco_to_grounding', 'yolo_to_grounding'])
def test_commands(tool, coco, yolo, tmp_path):
    out = tmp_path / 'cmd' / 'g.jsonl'
    args = ([str(coco), str(out), '--img-dir', str(tmp_path / 'imgs')]
            if tool == 'coco_to_grounding' else [str(yolo), str(out),
                                                 '--split', 'train'])
    proc = subprocess.run(
        [sys.executable, str(ROOT / 'tools' / 'dataset_converters' /
                             f'{tool}.py'), *args, '--max-negatives', '1'],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert '"images": 2' in proc.stdout
    assert len(GroundingDataset(str(out))) >= 2
    # A bad IN ends the command with a message, not a traceback.
    main = runpy.run_path(str(ROOT / 'tools' / 'dataset_converters' /
                              f'{tool}.py'), run_name='converter')['main']
    with pytest.raises(SystemExit, match='error:'):
        main([str(tmp_path / 'none'), str(out)])


def test_coco128_in_place(tmp_path):
    """The real photos of ../shared/data/coco128-seg, read where they are."""
    root = shared_data('coco128-seg')
    out = tmp_path / 'coco128' / 'train.jsonl'
    stats = yolo_to_grounding(str(root), str(out), max_negatives=3)
    assert stats['images'] == 128
    assert stats['images_without_labels'] == 2
    assert stats['labels_without_image'] == 2
    assert 900 <= stats['boxes'] <= 941
    ds = GroundingDataset(str(out), class_mode='category',
                          classes_file=str(root / 'classes.txt'))
    assert len(ds.classes) == 80
    info = ds.get_data_info(0)
    assert Path(info['img_path']).is_file()
    assert str(root.resolve()) in str(Path(info['img_path']).resolve())
