"""The shapes referring-segmentation splits: determinism, referents, masks."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import List, Set

import numpy as np
import pytest
from PIL import Image

from mmfusion.datasets.shapes import (COLOURS, SHAPES, ShapeObject,
                                      ShapesGenerator, ShapesRefSegGenerator,
                                      ensure_refseg_dataset, holds,
                                      render_scene, shapes_folder_name)
from mmfusion.datasets.shapes.refseg_split import (ALL_SHAPES_TEXTS,
                                                   COUNT_WORDS, REFSEG_TYPES,
                                                   refseg_folder_name)

SMALL = dict(train_quads=16, val_quads=4, test_quads=4, control_quads=4)
SPLITS = ('train', 'val', 'test', 'all_shapes_train', 'all_shapes_val',
          'all_shapes_test')


def read_jsonl(path: Path) -> List[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope='module')
def generated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp('refseg') / 'a'
    return ShapesRefSegGenerator(**SMALL).generate(out, progress=False)


def derive_referents(text: str, objects: List[ShapeObject]) -> Set[int]:
    """The referred objects recomputed from the phrase and the scene."""
    idx = range(len(objects))
    if text in ALL_SHAPES_TEXTS:
        return set(idx)
    m = re.fullmatch(r'the (\w+) shapes', text)
    if m and m.group(1) in COLOURS:
        return {i for i in idx if objects[i].colour == m.group(1)}
    m = re.fullmatch(r'the (\w+)s', text)
    if m and m.group(1) in SHAPES:
        return {i for i in idx if objects[i].shape == m.group(1)}
    m = re.fullmatch(r'the (large|small) (\w+) shapes', text)
    if m:
        return {i for i in idx if objects[i].size == m.group(1)
                and objects[i].colour == m.group(2)}
    m = re.fullmatch(r'the (\w+) (\w+) (on the left|on the right|at the top|'
                     r'at the bottom)', text)
    assert m, text
    pair = [i for i in idx if (objects[i].colour, objects[i].shape)
            == (m.group(1), m.group(2))]
    assert len(pair) == 2, (text, objects)
    a, b = (objects[i] for i in pair)
    relation = {'on the left': 'left of', 'on the right': 'right of',
                'at the top': 'above', 'at the bottom': 'below'}[m.group(3)]
    # Exactly one of the two stands in the relation to the other, with the
    # benchmark's gap: the phrase is never ambiguous.
    hits = [i for i, (x, y) in zip(pair, ((a, b), (b, a)))
            if holds(x, relation, y)]
    assert len(hits) == 1, text
    return set(hits)


def test_files_written(generated):
    assert (generated / 'classes.txt').read_text() == 'background\nreferred\n'
    meta = json.loads((generated / 'meta.json').read_text())
    assert meta['settings'] == ShapesRefSegGenerator(**SMALL).settings()
    for split in SPLITS:
        lines = read_jsonl(generated / f'refseg_{split}.jsonl')
        assert lines and meta['splits'][split]['samples'] == len(lines)
        for line in lines:
            assert set(line) == {'image', 'text', 'mask', 'phrase_type',
                                 'label'}
            assert (generated / line['image']).is_file()
            assert (generated / line['mask']).is_file()
            assert line['label'] in COUNT_WORDS
    assert len(read_jsonl(generated / 'refseg_train.jsonl')) == 4 * 16
    assert len(read_jsonl(generated / 'refseg_all_shapes_train.jsonl')) \
        == 4 * 4


def test_deterministic_and_seeded(generated, tmp_path):
    again = ShapesRefSegGenerator(**SMALL).generate(tmp_path / 'b',
                                                    progress=False)
    files = sorted(p.relative_to(generated) for p in generated.rglob('*')
                   if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob('*')
                           if p.is_file())
    for rel in files:
        assert (generated / rel).read_bytes() == (again / rel).read_bytes()
    other = ShapesRefSegGenerator(**{**SMALL, 'seed': 1})
    assert next(other.iter_images('train')).objects != next(
        ShapesRefSegGenerator(**SMALL).iter_images('train')).objects


@pytest.mark.parametrize('split', SPLITS)
def test_masks_are_the_phrase_referents(generated, split):
    """Each mask is exactly the pixels of the objects its phrase names."""
    scenes = {rec['image']: [ShapeObject.from_dict(o) for o in rec['objects']]
              for rec in read_jsonl(generated / f'scenes_{split}.jsonl')}
    for line in read_jsonl(generated / f'refseg_{split}.jsonl'):
        objects = scenes[line['image']]
        refs = derive_referents(line['text'], objects)
        assert refs and COUNT_WORDS[len(refs) - 1] == line['label']
        mask = np.asarray(Image.open(generated / line['mask']))
        assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1}
        expected = render_scene([objects[i] for i in sorted(refs)],
                                64).any(axis=2)
        np.testing.assert_array_equal(mask, expected.astype(np.uint8))


def test_phrase_decides_the_mask(generated):
    """Main split: each image has two phrases of one type with disjoint,
    non-empty masks, the four types in equal shares."""
    lines = read_jsonl(generated / 'refseg_train.jsonl')
    by_image = {}
    for line in lines:
        by_image.setdefault(line['image'], []).append(line)
    assert all(len(v) == 2 for v in by_image.values())
    for pair in by_image.values():
        assert pair[0]['phrase_type'] == pair[1]['phrase_type']
        assert pair[0]['text'] != pair[1]['text']
        a, b = (np.asarray(Image.open(generated / p['mask'])) for p in pair)
        assert a.any() and b.any() and not (a & b).any()
    types = Counter(line['phrase_type'] for line in lines)
    assert set(types) == set(REFSEG_TYPES) and len(set(types.values())) == 1


def test_classification_folder_unchanged(tmp_path):
    """The referring split lives in its own seg-<hash> folder; the
    classification benchmark's folder name for the defaults is as before."""
    assert shapes_folder_name(ShapesGenerator().settings()) == \
        'cls-aae9ccb471'
    settings = ShapesRefSegGenerator().settings()
    assert set(settings) == set(ShapesGenerator().settings())
    assert refseg_folder_name(settings).startswith('seg-')
    folder = ensure_refseg_dataset(tmp_path, progress=False, **SMALL)
    assert folder.name == refseg_folder_name(
        ShapesRefSegGenerator(**SMALL).settings())
    assert (folder / 'meta.json').is_file()
    assert ensure_refseg_dataset(tmp_path, progress=False, **SMALL) == folder
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]
    with pytest.raises(TypeError, match='valid settings'):
        ensure_refseg_dataset(tmp_path, train_images=3)
