"""coco_to_refseg, yolo_to_refseg and labelmap_to_refseg on fixtures made
here (and yolo_to_refseg on ../shared/data/coco128-seg when present)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmfusion.datasets import RefSegDataset
from mmfusion.datasets.converters import (annotation_mask, coco_to_refseg,
                                          labelmap_to_refseg,
                                          rasterize_polygon, yolo_to_refseg)

from conftest import shared_data

ROOT = Path(__file__).resolve().parents[2]
W, H = 40, 30


def read_jsonl(path: Path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def mask_of(out: Path, line: dict) -> np.ndarray:
    return np.asarray(Image.open(out.parent / line['mask']))


def save_image(path: Path, w: int = W, h: int = H) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(path)


# ------------------------------------------------------------------ COCO
def _rle(mask: np.ndarray) -> dict:
    """Uncompressed COCO RLE (column-major runs, starting with zeros)."""
    flat = mask.flatten(order='F').astype(np.uint8)
    counts, current, run = [], 0, 0
    for v in flat:
        if v != current:
            counts.append(run)
            current, run = v, 0
        run += 1
    counts.append(run)
    return {'counts': counts, 'size': list(mask.shape)}


@pytest.fixture()
def coco(tmp_path) -> Path:
    save_image(tmp_path / 'imgs' / 'a.jpg')
    save_image(tmp_path / 'imgs' / 'b.jpg')
    rle_mask = np.zeros((H, W), np.uint8)
    rle_mask[20:25, 30:36] = 1
    crowd = np.zeros((H, W), np.uint8)
    crowd[0:5, 0:40] = 1
    anns = [
        # image 1: two dogs (polygons) and a cat (RLE); a crowd of dogs.
        dict(id=1, image_id=1, category_id=18, iscrowd=0, bbox=[2, 2, 8, 8],
             segmentation=[[2, 2, 10, 2, 10, 10, 2, 10]]),
        dict(id=2, image_id=1, category_id=18, iscrowd=0,
             bbox=[12, 12, 6, 6], segmentation=[[12, 12, 18, 12, 18, 18,
                                                 12, 18]]),
        dict(id=3, image_id=1, category_id=17, iscrowd=0,
             bbox=[30, 20, 6, 5], segmentation=_rle(rle_mask)),
        dict(id=4, image_id=1, category_id=18, iscrowd=1,
             bbox=[0, 0, 40, 5], segmentation=_rle(crowd)),
        # image 2: a box without a mask only.
        dict(id=5, image_id=2, category_id=17, iscrowd=0, bbox=[1, 1, 3, 3]),
    ]
    data = dict(images=[dict(id=1, file_name='a.jpg', width=W, height=H),
                        dict(id=2, file_name='b.jpg', width=W, height=H)],
                annotations=anns,
                categories=[dict(id=17, name='cat'), dict(id=18, name='dog')])
    path = tmp_path / 'instances.json'
    path.write_text(json.dumps(data))
    return path


def test_coco_polygons_rle_and_crowd(coco, tmp_path):
    out = tmp_path / 'out' / 'train.jsonl'
    stats = coco_to_refseg(str(coco), str(out), str(tmp_path / 'imgs'))
    assert stats['samples'] == 2 and stats['images'] == 1
    assert stats['images_without_phrases'] == 1
    assert stats['no_mask_skipped'] == 1 and stats['crowd_regions'] == 1
    lines = read_jsonl(out)
    assert [line['text'] for line in lines] == ['cat', 'dog']
    cat, dog = (mask_of(out, line) for line in lines)
    assert cat.shape == (H, W) and set(np.unique(cat)) == {0, 1}
    assert (cat == 1).sum() == 5 * 6 and cat[20:25, 30:36].all()
    # Both dog polygons are in the dog mask; the crowd band is ignored
    # where no dog instance covers it.
    assert dog[5, 5] == 1 and dog[15, 15] == 1 and dog[25, 2] == 0
    assert dog[0, 30] == 255 and dog[3, 5] == 1
    # The converted file is a valid dataset.
    ds = RefSegDataset(str(out))
    assert ds.get_texts() == ['cat', 'dog']


def test_coco_compressed_rle_equals_uncompressed():
    from pycocotools import mask as mask_utils
    mask = np.zeros((H, W), np.uint8, order='F')
    mask[3:9, 4:20] = 1
    compressed = mask_utils.encode(np.asfortranarray(mask))
    compressed['counts'] = compressed['counts'].decode('ascii')
    np.testing.assert_array_equal(annotation_mask(compressed, H, W),
                                  mask.astype(bool))
    np.testing.assert_array_equal(annotation_mask(_rle(mask), H, W),
                                  mask.astype(bool))


def test_coco_missing_image_names_the_folder(coco, tmp_path):
    with pytest.raises(FileNotFoundError, match='--img-dir'):
        coco_to_refseg(str(coco), str(tmp_path / 'o.jsonl'))


# ------------------------------------------------------------------ YOLO
@pytest.fixture()
def yolo(tmp_path) -> Path:
    root = tmp_path / 'yolo'
    save_image(root / 'images' / 'train' / 'a.jpg')
    save_image(root / 'images' / 'train' / 'b.jpg')
    save_image(root / 'images' / 'train' / 'c.jpg')
    (root / 'labels' / 'train').mkdir(parents=True)
    (root / 'labels' / 'train' / 'a.txt').write_text(
        '1 0.1 0.1 0.3 0.1 0.3 0.5 0.1 0.5\n'
        '1 0.6 0.6 0.9 0.6 0.75 0.9\n'
        '0 0.5 0.1 0.7 0.1 0.7 0.3\n')
    (root / 'labels' / 'train' / 'b.txt').write_text('\n')
    (root / 'labels' / 'train' / 'orphan.txt').write_text(
        '0 0.1 0.1 0.2 0.1 0.2 0.2\n')
    (root / 'classes.txt').write_text('cat\ndog\n')
    return root


def test_yolo_polygons_and_class_names(yolo, tmp_path):
    out = tmp_path / 'out' / 'train.jsonl'
    stats = yolo_to_refseg(str(yolo), str(out), split='train')
    assert stats == {'images': 1, 'images_without_phrases': 2, 'samples': 2,
                     'polygons': 3, 'images_without_labels': 1,
                     'labels_without_image': 1}
    lines = read_jsonl(out)
    assert [line['text'] for line in lines] == ['cat', 'dog']
    assert lines[0]['image'] == '../yolo/images/train/a.jpg'
    cat, dog = (mask_of(out, line) for line in lines)
    np.testing.assert_array_equal(
        cat.astype(bool),
        rasterize_polygon([(0.5, 0.1), (0.7, 0.1), (0.7, 0.3)], W, H))
    # Two dog instances, one mask: a square and a triangle.
    assert dog[8, 8] == 1 and dog[22, 30] == 1 and dog[2, 25] == 0
    assert RefSegDataset(str(out)).get_texts() == ['cat', 'dog']


@pytest.mark.parametrize('line,message', [
    ('0 0.5 0.5 0.2 0.2', 'box line'),
    ('5 0.1 0.1 0.2 0.1 0.2 0.2', 'class 5'),
    ('0 0.1 0.1 0.2', 'three or more points'),
    ('0 a b c d e f', 'not numbers'),
])
def test_yolo_bad_lines_name_the_file(yolo, tmp_path, line, message):
    (yolo / 'labels' / 'train' / 'a.txt').write_text(line + '\n')
    with pytest.raises(ValueError, match=rf'a.txt:1: .*{message}'):
        yolo_to_refseg(str(yolo), str(tmp_path / 'o.jsonl'), split='train')


def test_cli_commands(yolo, coco, tmp_path):
    out = tmp_path / 'cli' / 'y.jsonl'
    proc = subprocess.run(
        [sys.executable, str(ROOT / 'tools' / 'dataset_converters' /
                             'yolo_to_refseg.py'), str(yolo), str(out)],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert '"samples": 2' in proc.stdout and len(read_jsonl(out)) == 2
    proc = subprocess.run(
        [sys.executable, str(ROOT / 'tools' / 'dataset_converters' /
                             'coco_to_refseg.py'), str(coco),
         str(tmp_path / 'cli' / 'c.jsonl')],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and '--img-dir' in proc.stderr


# -------------------------------------------------------------- label map
def test_labelmap_one_phrase_per_class_present(tmp_path):
    root = tmp_path / 'semseg'
    save_image(root / 'images' / 'x.png')
    save_image(root / 'images' / 'y.png')
    save_image(root / 'images' / 'z.png')
    (root / 'labels').mkdir()
    labels = np.zeros((H, W), np.uint8)
    labels[2:8, 2:8] = 2
    labels[10:20, 10:30] = 1
    labels[25:, :] = 255
    Image.fromarray(labels).save(root / 'labels' / 'x.png')
    Image.fromarray(np.zeros((H, W), np.uint8)).save(root / 'labels' /
                                                     'y.png')
    (root / 'classes.txt').write_text('background\nroad\ncar\n')
    out = tmp_path / 'out' / 'val.jsonl'
    stats = labelmap_to_refseg(str(root), str(out))
    assert stats == {'images': 1, 'images_without_phrases': 2, 'samples': 2,
                     'images_without_labels': 1}
    lines = read_jsonl(out)
    assert [line['text'] for line in lines] == ['road', 'car']
    road, car = (mask_of(out, line) for line in lines)
    assert (road == 1).sum() == 10 * 20 and (car == 1).sum() == 36
    assert (road[25:] == 255).all() and (car[25:] == 255).all()
    assert len(RefSegDataset(str(out))) == 2
    # Every class a phrase, background included.
    stats = labelmap_to_refseg(str(root), str(tmp_path / 'all.jsonl'),
                               background_index=None)
    assert stats['samples'] == 4


def test_labelmap_errors(tmp_path):
    root = tmp_path / 'semseg'
    save_image(root / 'images' / 'x.png')
    (root / 'labels').mkdir()
    (root / 'classes.txt').write_text('background\nroad\n')
    bad = np.zeros((H, W), np.uint8)
    bad[0, 0] = 7
    Image.fromarray(bad).save(root / 'labels' / 'x.png')
    with pytest.raises(ValueError, match=r'x.png: indices \[7\]'):
        labelmap_to_refseg(str(root), str(tmp_path / 'o.jsonl'))
    Image.fromarray(np.zeros((H, W + 1), np.uint8)).save(root / 'labels' /
                                                         'x.png')
    with pytest.raises(ValueError, match='41x30 but its image'):
        labelmap_to_refseg(str(root), str(tmp_path / 'o.jsonl'))


# --------------------------------------------------------- shared data
def test_yolo_to_refseg_on_coco128_seg(tmp_path):
    """The real sample, converted in place (only masks are written)."""
    src = shared_data('coco128-seg')
    out = tmp_path / 'coco128_refseg' / 'train2017.jsonl'
    stats = yolo_to_refseg(str(src), str(out), split='train2017')
    # 126 label files, 2 of them without an image; 2 images without labels.
    assert stats['images'] == 126 and stats['images_without_labels'] == 2
    assert stats['labels_without_image'] == 2
    assert stats['samples'] > 300
    ds = RefSegDataset(str(out))
    assert len(ds) == stats['samples']
    texts = set(ds.get_texts())
    names = (src / 'classes.txt').read_text().split('\n')
    assert 'person' in texts and texts <= set(names)
    info = ds.get_data_info(0)
    assert info['img_path'].startswith(str(src))
    assert not list(out.parent.rglob('*.jpg'))  # no image copied
