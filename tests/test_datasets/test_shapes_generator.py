"""The shapes benchmark generator: determinism, balance, correctness, cache."""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
from mmengine.registry import init_default_scope
from PIL import Image

from mmfusion.datasets.shapes import (COLOURS, QUESTION_TYPES, SHAPES,
                                      ShapeObject, ShapesGenerator,
                                      ensure_shapes_dataset, holds,
                                      render_scene, shapes_folder_name)
from mmfusion.datasets.shapes.scene import OPPOSITE, object_margin

# Small but covering every question type several times (quad i: type i % 4).
SMALL = dict(train_quads=40, val_quads=8, test_quads=8, control_quads=12)
MAIN_SPLITS = ('train', 'val', 'test')
CONTROL_SPLITS = tuple(f'{subset}_{phase}'
                       for subset in ('image_control', 'text_control')
                       for phase in ('train', 'val', 'test'))
NUMBERS = {'one': 1, 'two': 2, 'three': 3, 'four': 4}


def read_jsonl(path: Path) -> List[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def read_scenes(folder: Path, split: str) -> Dict[str, List[ShapeObject]]:
    return {rec['image']: [ShapeObject.from_dict(o) for o in rec['objects']]
            for rec in read_jsonl(folder / f'scenes_{split}.jsonl')}


@pytest.fixture(scope='module')
def generated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp('shapes') / 'a'
    return ShapesGenerator(**SMALL).generate(out, progress=False)


def test_files_written(generated):
    assert (generated / 'classes.txt').read_text() == 'no\nyes\n'
    meta = json.loads((generated / 'meta.json').read_text())
    assert meta['settings'] == ShapesGenerator(**SMALL).settings()
    for split in MAIN_SPLITS + CONTROL_SPLITS:
        samples = read_jsonl(generated / f'cls_{split}.jsonl')
        assert samples and meta['splits'][split]['samples'] == len(samples)
        for s in samples:
            assert set(s) == {'image', 'text', 'label', 'question_type'}
            assert s['image'].startswith(f'images/{split}/')
            assert (generated / s['image']).is_file()
            assert s['text'].endswith('?') and s['text'] == s['text'].lower()
    assert len(read_jsonl(generated / 'cls_train.jsonl')) == 4 * 40
    assert len(read_jsonl(generated / 'cls_image_control_train.jsonl')) \
        == 4 * 12
    assert len(read_jsonl(generated / 'cls_text_control_val.jsonl')) == 4 * 8


def test_deterministic(generated, tmp_path):
    again = ShapesGenerator(**SMALL).generate(tmp_path / 'b', progress=False)
    files = sorted(p.relative_to(generated) for p in generated.rglob('*')
                   if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob('*')
                           if p.is_file())
    for rel in files:
        assert (generated / rel).read_bytes() == (again / rel).read_bytes(), \
            rel
    other = ShapesGenerator(**{**SMALL, 'seed': 1}).generate(
        tmp_path / 'c', progress=False)
    assert (other / 'cls_train.jsonl').read_bytes() != \
        (generated / 'cls_train.jsonl').read_bytes()
    img = 'images/train/000000.png'
    assert not np.array_equal(np.asarray(Image.open(other / img)),
                              np.asarray(Image.open(generated / img)))


def test_independent_of_python_hash_seed():
    """Another interpreter with another hash seed writes the same split."""
    code = ('import hashlib, sys; '
            'from mmfusion.datasets.shapes import ShapesGenerator; '
            f'd = ShapesGenerator(**{SMALL!r}).build_split("val"); '
            'print(hashlib.sha1(repr((d.samples, d.scenes)).encode())'
            '.hexdigest())')
    root = Path(__file__).resolve().parents[2]
    digests = set()
    for hash_seed in ('1', '2'):
        out = subprocess.run(
            [sys.executable, '-c', code], cwd=root, check=True,
            capture_output=True, text=True,
            env={**os.environ, 'PYTHONHASHSEED': hash_seed})
        digests.add(out.stdout.strip())
    here = ShapesGenerator(**SMALL).build_split('val')
    digests.add(hashlib.sha1(repr((here.samples, here.scenes)).encode())
                .hexdigest())
    assert len(digests) == 1


def test_splits_independent():
    """A split's content does not depend on the other splits' sizes."""
    a = ShapesGenerator(**SMALL).build_split('val')
    b = ShapesGenerator(**{**SMALL, 'train_quads': 4}).build_split('val')
    assert a.samples == b.samples and a.scenes == b.scenes


@pytest.mark.parametrize('split', MAIN_SPLITS)
def test_main_split_balanced(generated, split):
    samples = read_jsonl(generated / f'cls_{split}.jsonl')
    types = Counter(s['question_type'] for s in samples)
    assert set(types) == set(QUESTION_TYPES)
    assert len(set(types.values())) == 1  # 25 % each
    labels = Counter(s['label'] for s in samples)
    assert labels['yes'] == labels['no'] == len(samples) // 2
    for key in ('text', 'image'):
        by_key: Dict[str, Counter] = defaultdict(Counter)
        for s in samples:
            by_key[s[key]][s['label']] += 1
        for value, count in by_key.items():
            assert count['yes'] == count['no'], (key, value, count)


@pytest.mark.parametrize('split', MAIN_SPLITS + CONTROL_SPLITS)
def test_scenes_valid(generated, split):
    """2-6 objects, inside the image, never overlapping (with the margin)."""
    size = 64
    margin = object_margin(size)
    scenes = read_scenes(generated, split)
    for image, objects in scenes.items():
        assert 2 <= len(objects) <= 6, image
        for o in objects:
            x1, y1, x2, y2 = o.bbox
            assert 0 <= x1 and 0 <= y1 and x2 <= size and y2 <= size
            assert o.shape in SHAPES and o.colour in COLOURS
        for i, a in enumerate(objects):
            for b in objects[i + 1:]:
                ax1, ay1, ax2, ay2 = a.bbox
                bx1, by1, bx2, by2 = b.bbox
                apart_x = bx1 - ax2 >= margin or ax1 - bx2 >= margin
                apart_y = by1 - ay2 >= margin or ay1 - by2 >= margin
                assert apart_x or apart_y, (image, a, b)


def test_pixels_match_scenes(generated):
    """PNGs decode to the rendered scene; each object fills its box edges."""
    scenes = read_scenes(generated, 'val')
    for image, objects in list(scenes.items())[:6]:
        pixels = np.asarray(Image.open(generated / image).convert('RGB'))
        assert pixels.shape == (64, 64, 3) and pixels.dtype == np.uint8
        np.testing.assert_array_equal(pixels, render_scene(objects, 64))
        for o in objects:
            alone = render_scene([o], 64).any(axis=2)
            ys, xs = np.nonzero(alone)
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == o.bbox


def _unique(objects, **attrs) -> ShapeObject:
    found = [o for o in objects
             if all(getattr(o, k) == v for k, v in attrs.items())]
    assert len(found) == 1, (attrs, objects)
    return found[0]


def derive_answer(text: str, objects: List[ShapeObject]) -> str:
    """The answer recomputed from the scene data alone."""
    m = re.fullmatch(r'is the (\w+) (\w+)\?', text)
    if m and m.group(1) in SHAPES:
        obj = _unique(objects, shape=m.group(1))
        return 'yes' if obj.colour == m.group(2) else 'no'
    m = re.fullmatch(r'is the (\w+) shape a (\w+)\?', text)
    if m:
        obj = _unique(objects, colour=m.group(1))
        return 'yes' if obj.shape == m.group(2) else 'no'
    m = re.fullmatch(r'(?:are|is) there (\w+) (\w+?) ?(shapes?|)\?', text)
    if m:
        n = NUMBERS[m.group(1)]
        noun = m.group(2)
        if m.group(3):  # "{n} {colour} shape(s)"
            count = sum(o.colour == noun for o in objects)
        else:  # "{n} {shape}s"
            count = sum(o.shape == noun.rstrip('s') for o in objects)
        return 'yes' if count == n else 'no'
    m = re.fullmatch(r'is the (\w+) (\w+) (left of|right of|above|below) '
                     r'the (\w+) (\w+)\?', text)
    assert m, text
    x = _unique(objects, colour=m.group(1), shape=m.group(2))
    y = _unique(objects, colour=m.group(4), shape=m.group(5))
    rel = m.group(3)
    if holds(x, rel, y):
        return 'yes'
    # Never ambiguous: the opposite relation holds with the full gap.
    assert holds(x, OPPOSITE[rel], y), text
    return 'no'


@pytest.mark.parametrize('split', MAIN_SPLITS)
def test_answers_match_scenes(generated, split):
    scenes = read_scenes(generated, split)
    for s in read_jsonl(generated / f'cls_{split}.jsonl'):
        assert derive_answer(s['text'], scenes[s['image']]) == s['label'], s


def test_count_texts_grammar(generated):
    texts = {s['text'] for s in read_jsonl(generated / 'cls_train.jsonl')
             if s['question_type'] == 'count'}
    for text in texts:
        assert text.startswith('is there one ') == (' one ' in text), text


def test_image_control(generated):
    for phase in ('train', 'val', 'test'):
        split = f'image_control_{phase}'
        samples = read_jsonl(generated / f'cls_{split}.jsonl')
        scenes = read_scenes(generated, split)
        assert {s['text'] for s in samples} == {'is there a red shape?'}
        labels = Counter(s['label'] for s in samples)
        assert labels['yes'] == labels['no']
        for s in samples:
            red = any(o.colour == 'red' for o in scenes[s['image']])
            assert s['label'] == ('yes' if red else 'no')


def test_text_control(generated):
    for phase in ('train', 'val', 'test'):
        samples = read_jsonl(generated / f'cls_text_control_{phase}.jsonl')
        labels = Counter(s['label'] for s in samples)
        assert labels['yes'] == labels['no']
        per_image: Dict[str, Counter] = defaultdict(Counter)
        for s in samples:
            word = re.fullmatch(r'is (\w+) a colour\?', s['text']).group(1)
            assert word in COLOURS + SHAPES
            assert s['label'] == ('yes' if word in COLOURS else 'no')
            per_image[s['image']][s['label']] += 1
        assert all(c['yes'] == c['no'] for c in per_image.values())


def test_settings_and_validation():
    gen = ShapesGenerator(seed=3)
    assert gen.settings() == dict(
        image_size=64, min_objects=2, max_objects=6, train_quads=12000,
        val_quads=500, test_quads=1000, control_quads=1500, seed=3)
    assert json.dumps(gen.settings())  # plain data
    with pytest.raises(ValueError, match='min_objects'):
        ShapesGenerator(min_objects=1)


def test_other_image_size(tmp_path):
    out = ShapesGenerator(image_size=32, max_objects=4, train_quads=8,
                          val_quads=4, test_quads=4, control_quads=4
                          ).generate(tmp_path / 'd', progress=False)
    image = read_jsonl(out / 'cls_train.jsonl')[0]['image']
    assert Image.open(out / image).size == (32, 32)
    scenes = read_scenes(out, 'train')
    for s in read_jsonl(out / 'cls_train.jsonl'):
        assert derive_answer(s['text'], scenes[s['image']]) == s['label']


def test_ensure_caches(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny = dict(train_quads=4, val_quads=4, test_quads=4, control_quads=4)
    first = ensure_shapes_dataset('data/shapes', progress=False, **tiny)
    assert first.is_absolute() and first.parent == tmp_path / 'data/shapes'
    assert first.name == shapes_folder_name(
        ShapesGenerator(**tiny).settings())
    assert re.fullmatch(r'cls-[0-9a-f]{10}', first.name)
    stamp = (first / 'meta.json').stat().st_mtime_ns
    again = ensure_shapes_dataset(tmp_path / 'data/shapes', progress=False,
                                  **tiny)
    assert again == first
    assert (first / 'meta.json').stat().st_mtime_ns == stamp  # not redone
    other = ensure_shapes_dataset('data/shapes', progress=False,
                                  **{**tiny, 'seed': 5})
    assert other != first and (other / 'meta.json').is_file()
    leftovers = [p for p in (tmp_path / 'data/shapes').iterdir()
                 if p.name.startswith('.tmp-')]
    assert not leftovers
    with pytest.raises(TypeError, match='valid settings'):
        ensure_shapes_dataset(tmp_path, progress=False, colours=3)


def test_ensure_lost_race(tmp_path, monkeypatch):
    """If another process renames its copy first, ours is deleted."""
    tiny = dict(train_quads=4, val_quads=4, test_quads=4, control_quads=4)
    original = ShapesGenerator.generate
    final = tmp_path / shapes_folder_name(ShapesGenerator(**tiny).settings())

    def generate_and_lose(self, out_dir, progress=True):
        original(self, final, progress=False)  # the "other process"
        return original(self, out_dir, progress=progress)

    monkeypatch.setattr(ShapesGenerator, 'generate', generate_and_lose)
    assert ensure_shapes_dataset(tmp_path, progress=False, **tiny) == final
    assert sorted(p.name for p in tmp_path.iterdir()) == [final.name]


def test_ensure_other_ranks_wait(tmp_path, monkeypatch):
    tiny = dict(train_quads=4, val_quads=4, test_quads=4, control_quads=4)
    monkeypatch.setenv('LOCAL_RANK', '1')
    with pytest.raises(TimeoutError, match='local rank 0'):
        ensure_shapes_dataset(tmp_path, progress=False, wait_timeout_s=0.2,
                              poll_interval_s=0.05, **tiny)
    assert not list(tmp_path.iterdir())  # rank 1 never writes
    monkeypatch.setenv('LOCAL_RANK', '0')
    folder = ensure_shapes_dataset(tmp_path, progress=False, **tiny)
    monkeypatch.setenv('LOCAL_RANK', '1')
    assert ensure_shapes_dataset(tmp_path, progress=False,
                                 wait_timeout_s=0.2, **tiny) == folder


def test_shapes_cls_dataset(tmp_path):
    init_default_scope('mmfusion')
    from mmfusion.registry import DATASETS
    tiny = dict(train_quads=4, val_quads=4, test_quads=8, control_quads=4)
    ds = DATASETS.build(dict(type='ShapesClsDataset', data_root=str(tmp_path),
                             split='test', generator=tiny))
    assert len(ds) == 4 * 8
    assert ds.metainfo['classes'] == ('no', 'yes')
    info = ds.get_data_info(0)
    assert Path(info['img_path']).is_file()
    assert info['gt_label'] in (0, 1) and info['question_type'] == 'colour'
    ctrl = DATASETS.build(dict(type='ShapesClsDataset',
                               data_root=str(tmp_path), split='val',
                               subset='text_control', generator=tiny))
    assert ctrl.shapes_root == ds.shapes_root
    assert all('a colour?' in t for t in ctrl.get_texts())
    with pytest.raises(ValueError, match='subset'):
        DATASETS.build(dict(type='ShapesClsDataset', data_root=str(tmp_path),
                            subset='mains', generator=tiny))
