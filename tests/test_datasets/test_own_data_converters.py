"""The own-data converters (hateful_memes_to_cls, csv_to_cls,
coco_captions_to_cls, yolo_to_cls, voc_to_grounding), each on a tiny
fixture the test makes, through the command's ``main`` (argparse included)
and read back by the datasets that train on the output."""
from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import pytest
from PIL import Image

from mmfusion.registry import DATASETS

ROOT = Path(__file__).resolve().parents[2]


def tool(name: str):
    """tools/dataset_converters/<name>.py as a module (its main())."""
    path = ROOT / 'tools' / 'dataset_converters' / f'{name}.py'
    spec = importlib.util.spec_from_file_location(f'_tool_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def image(path: Path, size=(32, 24), colour=(200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new('RGB', size, colour).save(path)
    return path


def read_jsonl(path: Path):
    return [json.loads(line) for line in path.read_text().splitlines()
            if line.strip()]


def cls_dataset(out: Path, split: str):
    return DATASETS.build(dict(type='MultimodalClsDataset', data_root=str(out),
                               ann_file=f'{split}.jsonl'))


# ------------------------------------------------------------ hateful memes
def test_hateful_memes_to_cls(tmp_path, capsys):
    src = tmp_path / 'hm'
    lines = {
        'train.jsonl': [(1, 'img/01.png', 0, 'a kind meme'),
                        (2, 'img/02.png', 1, 'a hateful meme'),
                        (3, 'img/03.png', 0, 'another one')],
        'dev_seen.jsonl': [(4, 'img/04.png', 1, 'dev meme')],
        'test.jsonl': [(5, 'img/05.png', None, 'no label here')],
    }
    src.mkdir()
    for name, rows in lines.items():
        with open(src / name, 'w') as f:
            for id_, img, label, text in rows:
                image(src / img)
                rec = {'id': id_, 'img': img, 'text': text}
                if label is not None:
                    rec['label'] = label
                f.write(json.dumps(rec) + '\n')
    out = tmp_path / 'out'
    tool('hateful_memes_to_cls').main([str(src), str(out)])
    stats = json.loads(capsys.readouterr().out.split(': ', 1)[1])
    assert stats['train']['labels'] == {'hateful': 1, 'not_hateful': 2}
    assert stats['test']['left_out'] == {'unlabelled': 1,
                                         'missing_image': 0}
    assert (out / 'classes.txt').read_text().split() == ['not_hateful',
                                                         'hateful']
    assert not (out / 'test.jsonl').exists()  # nothing labelled to test on
    train = cls_dataset(out, 'train')
    assert train.get_texts() == ['a kind meme', 'a hateful meme',
                                 'another one']
    assert [train.get_data_info(i)['gt_label'] for i in range(3)] == [0, 1, 0]
    assert read_jsonl(out / 'val.jsonl')[0]['id'] == 4
    # A malformed line is named by file and line.
    (src / 'train.jsonl').write_text('{"img": "img/01.png", "label": 7}\n')
    with pytest.raises(SystemExit, match=r'train.jsonl:1: "label" must be'):
        tool('hateful_memes_to_cls').main([str(src), str(out)])


# ---------------------------------------------------------------------- csv
def test_csv_to_cls_columns_delimiter_and_splits(tmp_path):
    rows = [('photos/a.jpg', 'a dog, on a sofa', 'indoor', 'train'),
            ('photos/b.jpg', 'a beach at noon', 'outdoor', 'train'),
            ('photos/c.jpg', '', 'outdoor', 'val'),
            ('photos/d.jpg', 'a kitchen', 'indoor', 'test')]
    for r in rows:
        image(tmp_path / r[0])
    table = tmp_path / 'labels.tsv'
    with open(table, 'w', newline='') as f:
        w = csv.writer(f, delimiter='\t')
        w.writerow(['file', 'caption', 'category', 'part'])
        w.writerows(rows)
    out = tmp_path / 'out'
    tool('csv_to_cls').main([
        str(table), str(out), '--image-col', 'file', '--text-col', 'caption',
        '--label-col', 'category', '--delimiter', 'tab', '--split-col',
        'part'])
    train = read_jsonl(out / 'train.jsonl')
    assert [r['text'] for r in train] == ['a dog, on a sofa',
                                          'a beach at noon']
    assert read_jsonl(out / 'val.jsonl')[0]['text'] is None  # empty: absent
    assert cls_dataset(out, 'test').classes == ('indoor', 'outdoor')
    assert cls_dataset(out, 'train').get_data_info(0)['img_path'] == str(
        tmp_path / 'photos' / 'a.jpg')

    # Drawn splits are deterministic; a wrong column lists the header.
    plain = tmp_path / 'plain.csv'
    with open(plain, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['image', 'text', 'label'])
        w.writerows([(r[0], r[1] or 'x', r[2]) for r in rows] * 5)
    args = [str(plain), str(tmp_path / 'o1'), '--val-fraction', '0.25',
            '--test-fraction', '0.25', '--seed', '3']
    tool('csv_to_cls').main(args)
    tool('csv_to_cls').main(args[:1] + [str(tmp_path / 'o2')] + args[2:])
    for split in ('train', 'val', 'test'):
        assert (tmp_path / 'o1' / f'{split}.jsonl').read_text() == \
            (tmp_path / 'o2' / f'{split}.jsonl').read_text()
    with pytest.raises(SystemExit, match=r"no label column 'cat'.*'text'"):
        tool('csv_to_cls').main([str(plain), str(tmp_path / 'o3'),
                                 '--label-col', 'cat'])
    with open(plain, 'a') as f:
        f.write('photos/missing.jpg,hello,indoor\n')
    with pytest.raises(SystemExit, match=r'plain.csv:22: image .* not found'):
        tool('csv_to_cls').main([str(plain), str(tmp_path / 'o4')])


# ------------------------------------------------------------ coco captions
def test_coco_captions_to_cls_pairs_and_negatives(tmp_path):
    images = [{'id': i, 'file_name': f'{i:012d}.jpg'} for i in range(1, 7)]
    anns = [{'id': 10 * i + k, 'image_id': i, 'caption': f'caption {k} of {i}'}
            for i in range(1, 7) for k in range(2)]
    for img in images:
        image(tmp_path / 'train2017' / img['file_name'])
    ann = tmp_path / 'annotations' / 'captions_train2017.json'
    ann.parent.mkdir()
    ann.write_text(json.dumps({'images': images, 'annotations': anns}))
    outs = []
    for name in ('a', 'b'):
        tool('coco_captions_to_cls').main([
            str(ann), str(tmp_path / name), '--negatives', '2',
            '--split', 'train', '--seed', '1'])
        outs.append((tmp_path / name / 'train.jsonl').read_text())
    assert outs[0] == outs[1]  # deterministic
    rows = read_jsonl(tmp_path / 'a' / 'train.jsonl')
    pos = [r for r in rows if r['label'] == 'match']
    neg = [r for r in rows if r['label'] == 'mismatch']
    assert len(pos) == 6 and len(neg) == 12  # 1 caption per image, 2 negs
    for r in pos:
        assert r['text'] == f'caption 0 of {r["image_id"]}'
    for r in neg:
        assert r['caption_of'] != r['image_id']
        assert r['text'].endswith(f'of {r["caption_of"]}')
    ds = cls_dataset(tmp_path / 'a', 'train')
    assert ds.classes == ('mismatch', 'match')
    # Split by image: no image in two splits, negatives from the same split.
    tool('coco_captions_to_cls').main([
        str(ann), str(tmp_path / 'c'), '--captions-per-image', '0',
        '--val-fraction', '0.2', '--test-fraction', '0.2'])
    seen = {}
    for split in ('train', 'val', 'test'):
        rows = read_jsonl(tmp_path / 'c' / f'{split}.jsonl')
        ids = {r['image_id'] for r in rows}
        assert all(r.get('caption_of', r['image_id']) in ids for r in rows)
        for i in ids:
            assert seen.setdefault(i, split) == split
    assert len(seen) == 6


# -------------------------------------------------------------------- yolo
def test_yolo_to_cls_balanced_questions(tmp_path):
    root = tmp_path / 'yolo'
    (root / 'classes.txt').parent.mkdir(parents=True)
    (root / 'classes.txt').write_text('person\ndog\napple\ncar\n')
    labels = {'a': ['0 0.5 0.5 0.2 0.2', '1 0.1 0.1 0.3 0.1 0.2 0.3'],
              'b': ['0 0.3 0.3 0.1 0.1'], 'c': ['2 0.5 0.5 0.5 0.5'],
              'd': []}
    for stem, lines in labels.items():
        image(root / 'images' / 'train' / f'{stem}.jpg')
        lbl = root / 'labels' / 'train' / f'{stem}.txt'
        lbl.parent.mkdir(parents=True, exist_ok=True)
        lbl.write_text('\n'.join(lines) + '\n')
    out = tmp_path / 'out'
    tool('yolo_to_cls').main([str(root), str(out), '--val-fraction', '0',
                              '--test-fraction', '0'])
    rows = read_jsonl(out / 'train.jsonl')
    assert len(rows) == 8  # a: 2 yes + 2 no, b: 1 + 1, c: 1 + 1; d: none
    by_image = {}
    for r in rows:
        by_image.setdefault(Path(r['image']).stem, []).append(r['label'])
    assert {k: sorted(v) for k, v in by_image.items()} == {
        'a': ['no', 'no', 'yes', 'yes'], 'b': ['no', 'yes'],
        'c': ['no', 'yes']}
    assert 'is there an apple in the image?' in {r['text'] for r in rows}
    # "person" is in two images: it is asked as a "no" where it is absent.
    person = [r['label'] for r in rows if 'person' in r['text']]
    assert sorted(person) == ['no', 'yes', 'yes']
    assert cls_dataset(out, 'train').classes == ('no', 'yes')


# --------------------------------------------------------------------- voc
VOC_XML = """<annotation>
  <filename>{name}.jpg</filename>
  <size><width>40</width><height>30</height><depth>3</depth></size>
  {objects}
</annotation>"""
VOC_OBJ = """<object><name>{cls}</name><difficult>{d}</difficult>
  <bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax>
  <ymax>{y2}</ymax></bndbox></object>"""


def make_voc(root: Path) -> Path:
    objs = {'000001': [('dog', 0, (1, 1, 20, 10)), ('pottedplant', 0,
                                                     (5, 5, 40, 30))],
            '000002': [('cat', 0, (2, 3, 12, 13)), ('dog', 1, (1, 1, 5, 5))],
            '000003': [('person', 0, (10, 10, 20, 20))]}
    for name, objects in objs.items():
        image(root / 'JPEGImages' / f'{name}.jpg', size=(40, 30))
        xml = VOC_XML.format(name=name, objects=''.join(
            VOC_OBJ.format(cls=c, d=d, x1=b[0], y1=b[1], x2=b[2], y2=b[3])
            for c, d, b in objects))
        (root / 'Annotations').mkdir(parents=True, exist_ok=True)
        (root / 'Annotations' / f'{name}.xml').write_text(xml)
    main = root / 'ImageSets' / 'Main'
    main.mkdir(parents=True)
    (main / 'train.txt').write_text('000001\n000002\n')
    (main / 'val.txt').write_text('000003\n')
    return root


def test_voc_to_grounding(tmp_path, capsys):
    voc = make_voc(tmp_path / 'VOCdevkit' / 'VOC2007')
    out = tmp_path / 'out'
    tool('voc_to_grounding').main([str(tmp_path / 'VOCdevkit'), str(out)])
    stats = json.loads(capsys.readouterr().out.split(': ', 1)[1])
    assert stats['train']['images'] == 2 and stats['val']['images'] == 1
    first = read_jsonl(out / 'train.jsonl')[0]
    assert first['width'] == 40 and first['height'] == 30
    regions = first['grounding']['regions']
    assert [r['phrase'] for r in regions] == ['dog', 'potted plant']
    assert regions[0]['bbox'] == [0.0, 0.0, 20.0, 10.0]  # 1-based -> 0-based
    negatives = first['grounding']['negatives']
    assert len(negatives) == 18 and 'dog' not in negatives
    assert 'tv monitor' in negatives
    assert first['grounding']['caption'].startswith('dog. potted plant. ')
    # The detection dataset reads it: one sample per (image, phrase).
    ds = DATASETS.build(dict(type='GroundingDataset',
                             ann_file=str(out / 'train.jsonl')))
    assert len(ds) == 2 * 20
    texts = [ds.get_data_info(i)['text'] for i in range(20)]
    assert texts[:2] == ['dog', 'potted plant']
    # Difficult objects: kept by default; with --skip-difficult the class
    # is neither a region nor a negative where only difficult ones are.
    tool('voc_to_grounding').main([str(voc), str(tmp_path / 'v.jsonl'),
                                   '--split', 'train', '--skip-difficult',
                                   '--max-negatives', '3', '--raw-names'])
    second = read_jsonl(tmp_path / 'v.jsonl')[1]['grounding']
    assert [r['phrase'] for r in second['regions']] == ['cat']
    assert 'dog' not in second['negatives'] and len(second['negatives']) == 3
    bad = voc / 'Annotations' / '000003.xml'
    bad.write_text(bad.read_text().replace('<xmax>20</xmax>',
                                           '<xmax>5</xmax>'))
    with pytest.raises(SystemExit, match='000003.xml: object 1: box'):
        tool('voc_to_grounding').main([str(voc), str(tmp_path / 'o2')])
