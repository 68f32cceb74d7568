"""The shapes grounding split: phrases decide the targets, determinism, the
folder scheme beside the classification benchmark."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from mmfusion.datasets import ShapesGroundingDataset
from mmfusion.datasets.shapes import (CONTROL_PHRASE, PHRASE_TYPES, SIDES,
                                      Query, ShapeObject, ShapesGenerator,
                                      ShapesGroundingGenerator,
                                      ensure_shapes_dataset,
                                      shapes_folder_name)
from mmfusion.datasets.shapes.phrases import on_side, side_band

SMALL = dict(train_quads=50, val_quads=10, test_quads=10, control_quads=5)


def read_jsonl(path: Path):
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.fixture(scope='module')
def generated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp('grounding') / 'a'
    return ShapesGroundingGenerator(**SMALL).generate(out, progress=False)


def parse(text: str) -> Query:
    """A phrase back into its constraints."""
    side = next((s for s in SIDES if text.endswith(' ' + s)), None)
    if side:
        text = text[:-len(side) - 1]
    words = text.split()
    assert words[0] == 'the'
    size = words[1] if words[1] in ('small', 'large') else None
    rest = words[2:] if size else words[1:]
    colour = rest[0] if len(rest) == 2 else None
    noun = rest[-1]
    shape = None if noun == 'shapes' else noun[:-1]
    return Query(colour=colour, shape=shape, size=size, side=side)


def scenes(folder: Path, split: str):
    return {r['image']: [ShapeObject.from_dict(o) for o in r['objects']]
            for r in read_jsonl(folder / f'scenes_{split}.jsonl')}


def samples(folder: Path, split: str):
    """(image, phrase, type, target boxes) for every sample of a split."""
    out = []
    for rec in read_jsonl(folder / f'grounding_{split}.jsonl'):
        g = rec['grounding']
        boxes = {}
        for r in g['regions']:
            boxes.setdefault(r['phrase'], []).append(tuple(r['bbox']))
        for phrase in list(boxes) + g['negatives']:
            out.append((rec['filename'], phrase, g['phrase_types'][phrase],
                        sorted(boxes.get(phrase, []))))
    return out


@pytest.mark.parametrize('split', ['train', 'val', 'test'])
def test_targets_are_exactly_what_the_phrase_refers_to(generated, split):
    objects = scenes(generated, split)
    size = 96
    for image, phrase, ptype, boxes in samples(generated, split):
        q = parse(phrase)
        assert q.text == phrase
        expected = sorted(tuple(o.bbox) for o in objects[image]
                          if q.matches(o, size))
        assert boxes == expected, (image, phrase)
        if q.side is not None:  # nobody near the dividing line
            band = side_band(size)
            for o in objects[image]:
                x1, y1, x2, y2 = o.bbox
                lo, hi = (x1, x2) if q.side in SIDES[:2] else (y1, y2)
                assert hi <= size / 2 - band or lo >= size / 2 + band


def test_quads_contrast_and_balance(generated):
    rows = samples(generated, 'train')
    assert len(rows) == 4 * SMALL['train_quads']
    types = Counter(r[2] for r in rows)
    assert set(types) == set(PHRASE_TYPES)
    assert len(set(types.values())) == 1
    counts = Counter(min(len(r[3]), 2) for r in rows)
    assert counts[0] > 0 and counts[1] > 0 and counts[2] > 0  # 0, 1, many
    assert counts[0] < 0.35 * len(rows)
    for q in range(SMALL['train_quads']):
        quad = rows[4 * q:4 * q + 4]
        # Two images x the same two phrases, which differ in one word and
        # never share a target.
        assert quad[0][0] == quad[1][0] != quad[2][0] == quad[3][0]
        assert {quad[0][1], quad[1][1]} == {quad[2][1], quad[3][1]}
        a, b = quad[0][1].split(), quad[1][1].split()
        assert len(a) == len(b) and sum(x != y for x, y in zip(a, b)) == 1
        for img in (0, 2):
            assert not set(quad[img][3]) & set(quad[img + 1][3])
        # The image's own phrase holds on it.
        assert quad[0][3] or quad[1][3]
        assert quad[2][3] or quad[3][3]


def test_control_every_shape(generated):
    objects = scenes(generated, 'control_train')
    rows = samples(generated, 'control_train')
    assert len(rows) == 4 * SMALL['control_quads']
    for image, phrase, ptype, boxes in rows:
        assert phrase == CONTROL_PHRASE and ptype == 'control'
        assert boxes == sorted(tuple(o.bbox) for o in objects[image])


def test_deterministic_and_seeded(generated, tmp_path):
    again = ShapesGroundingGenerator(**SMALL).generate(tmp_path / 'b',
                                                       progress=False)
    files = sorted(p.relative_to(generated) for p in generated.rglob('*')
                   if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob('*')
                           if p.is_file())
    for rel in files:
        assert (generated / rel).read_bytes() == (again / rel).read_bytes()
    other = ShapesGroundingGenerator(**{**SMALL, 'seed': 1})
    assert [q.samples for q in other.iter_quads('val')] != [
        q.samples for q in ShapesGroundingGenerator(**SMALL).iter_quads(
            'val')]


def test_folders_beside_classification(tmp_path):
    """det-<hash> for grounding; the classification folder names (and so
    their contents) are unchanged by the grounding task."""
    assert shapes_folder_name(ShapesGenerator().settings()) == \
        'cls-aae9ccb471'
    settings = ShapesGroundingGenerator(**SMALL).settings()
    folder = ensure_shapes_dataset(tmp_path, progress=False, task='det',
                                   **SMALL)
    assert folder.name == shapes_folder_name(settings, 'det')
    assert folder.name.startswith('det-')
    assert shapes_folder_name(settings, 'det')[4:] == \
        shapes_folder_name(settings)[4:]
    with pytest.raises(ValueError, match='task'):
        ensure_shapes_dataset(tmp_path, task='seg2', **SMALL)
    ds = ShapesGroundingDataset(data_root=str(tmp_path), split='val',
                                generator=SMALL)
    assert len(ds) == 4 * SMALL['val_quads']
    assert ds.classes == ('referred', )
    cats = ShapesGroundingDataset(data_root=str(tmp_path), split='val',
                                  generator=SMALL, class_mode='category')
    assert cats.classes == ('circle', 'square', 'triangle', 'diamond')
    control = ShapesGroundingDataset(data_root=str(tmp_path), split='test',
                                     subset='control', generator=SMALL)
    assert set(control.get_texts()) == {CONTROL_PHRASE}


def test_phrases_vocabulary(generated):
    words = set()
    for _, phrase, _, _ in samples(generated, 'train'):
        words.update(phrase.split())
    assert {'left', 'right', 'top', 'bottom', 'small', 'large'} <= words


def test_on_side():
    obj = ShapeObject('circle', 'red', 'small', cx=10, cy=80, radius=8)
    assert on_side(obj, 'on the left', 96)
    assert on_side(obj, 'at the bottom', 96)
    assert not on_side(obj, 'on the right', 96)
    assert not on_side(obj, 'at the top', 96)


def test_generate_shapes_tool_det(tmp_path):
    import subprocess
    import sys
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, str(root / 'tools' / 'generate_shapes.py'),
         '--task', 'det', '--data-root', str(tmp_path), '--train-quads', '2',
         '--val-quads', '1', '--test-quads', '1', '--control-quads', '1',
         '--no-progress'], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    settings = ShapesGroundingGenerator(train_quads=2, val_quads=1,
                                        test_quads=1,
                                        control_quads=1).settings()
    folder = tmp_path / shapes_folder_name(settings, 'det')
    assert (folder / 'meta.json').is_file()
    assert str(folder) in proc.stdout
