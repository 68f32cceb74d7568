"""tools/validate_dataset.py: counts per split and label, and every problem
with file and line, on data the test writes."""
from __future__ import annotations

import json

import pytest
from PIL import Image

from mmfusion.cli.validate_dataset import main
from mmfusion.datasets.validation import (format_reports,
                                          validate_config_datasets)


def write_cls(root, bad=False):
    (root / 'img').mkdir(parents=True)
    Image.new('RGB', (16, 16)).save(root / 'img' / 'a.png')
    good = [{'image': 'img/a.png', 'text': f'is it {c}?', 'label': lab}
            for c, lab in (('red', 'yes'), ('blue', 'no'), ('green', 'no'))]
    lines = [json.dumps(r) for r in good]
    if bad:
        lines += ['{"image": "img/a.png", "text": "x"',  # line 4: bad JSON
                  json.dumps({'image': 'img/none.png', 'text': 'y',
                              'label': 'yes'}),         # 5: missing image
                  json.dumps({'image': 'img/a.png', 'text': '  ',
                              'label': 'no'}),          # 6: empty text
                  json.dumps({'image': 'img/a.png', 'text': 'z',
                              'label': 'maybe'})]       # 7: unknown label
    for split in ('train', 'val', 'test'):
        (root / f'{split}.jsonl').write_text('\n'.join(lines) + '\n')
    (root / 'classes.txt').write_text('no\nyes\n')


def test_reports_counts_and_every_problem(tmp_path, capsys):
    write_cls(tmp_path / 'd', bad=True)
    with pytest.raises(SystemExit) as exit_info:
        main(['cls_custom', f'data_root={tmp_path / "d"}', '--split',
              'train', 'num_classes=3'])
    assert exit_info.value.code == 1
    out = capsys.readouterr().out
    assert '[train] MultimodalClsDataset' in out and '3 samples' in out
    assert 'no: 2 (66.7%)' in out and 'yes: 1 (33.3%)' in out
    assert '5 problem(s)' in out
    for line in (4, 5, 6, 7):
        assert f'train.jsonl:{line}:' in out, out
    assert 'num_classes=3 but the classes file lists 2' in out
    assert '[val]' not in out


def test_clean_dataset_passes(tmp_path, capsys):
    write_cls(tmp_path / 'd')
    with pytest.raises(SystemExit) as exit_info:
        main(['cls_custom', f'data_root={tmp_path / "d"}'])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.count('3 samples') == 3 and 'no problems found' in out


def test_missing_file_and_grounding_counts(tmp_path):
    Image.new('RGB', (20, 20)).save(tmp_path / 'a.png')
    odvg = tmp_path / 'g.jsonl'
    odvg.write_text(json.dumps({
        'filename': 'a.png', 'height': 20, 'width': 20,
        'grounding': {'caption': 'a dog. a cat.', 'regions': [
            {'bbox': [1, 1, 9, 9], 'phrase': 'a dog'}],
            'negatives': ['a cat']}}) + '\n')
    reports = validate_config_datasets({
        'train_dataloader': {'dataset': {'type': 'GroundingDataset',
                                         'ann_file': str(odvg)}},
        'val_dataloader': {'dataset': {'type': 'MultimodalClsDataset',
                                       'ann_file': str(tmp_path / 'no.jsonl'),
                                       'metainfo': {'classes': ['a']}}}})
    train, val = reports
    assert train.ok and train.samples == 2
    assert train.labels['with boxes'] == 1
    assert train.labels['negative (no box)'] == 1
    assert not val.ok and 'no.jsonl not found' in val.problems[0]
    assert '1 problem(s)' in format_reports(reports)
