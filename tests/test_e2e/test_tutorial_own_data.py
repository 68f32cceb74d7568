"""docs/tutorial_own_data.md end to end on ../shared/data/coco128-seg (read
in place): convert, validate, train (a tiny schedule), test, infer a
picture -- the tutorial's five commands (train, test and infer in real
processes; the converter and the check through their ``main`` in this one,
to save two interpreter start-ups). Skips with the reason shown when the
shared data is absent; the converter and the validation are also covered
by fixtures (tests/test_datasets)."""
from __future__ import annotations

import importlib.util
import json
import re

import pytest

from conftest import ROOT, shared_data
from test_train_cli import run_tool

TUTORIAL = ROOT / 'docs' / 'tutorial_own_data.md'
# The tutorial's schedule, shortened: 8 iterations at 64 px.
TINY = ['train_cfg.max_iters=8', 'train_cfg.val_interval=100',
        'param_scheduler.0.end=2', 'param_scheduler.1.begin=2',
        'image_size=64', 'test_after_train=false',
        'default_hooks.logger.interval=4']


def test_tutorial_commands_are_the_tested_ones():
    text = TUTORIAL.read_text()
    for command in ('tools/dataset_converters/yolo_to_cls.py',
                    'tools/validate_dataset.py cls_custom',
                    'tools/train.py cls_custom', 'tools/test.py',
                    'tools/infer.py'):
        assert command in text, command
    assert len(re.findall(r'^## \d\. ', text, re.M)) == 5


def converter(name: str):
    path = ROOT / 'tools' / 'dataset_converters' / f'{name}.py'
    spec = importlib.util.spec_from_file_location(f'_tool_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tutorial_end_to_end_on_coco128(tmp_path, capsys):
    from mmfusion.cli.validate_dataset import main as validate
    coco = shared_data('coco128-seg')
    data, wd = tmp_path / 'data' / 'coco128_cls', tmp_path / 'wd'
    converter('yolo_to_cls').main([str(coco), str(data)])
    assert (data / 'classes.txt').read_text().split() == ['no', 'yes']
    assert not any(tmp_path.rglob('*.jpg'))  # nothing copied
    with pytest.raises(SystemExit) as status:
        validate(['cls_custom', f'data_root={data}'])
    out = capsys.readouterr().out
    assert status.value.code == 0, out
    assert 'no problems found' in out and '[test]' in out
    run_tool('train.py', 'cls_custom', f'data_root={data}', *TINY,
             '--work-dir', str(wd), cwd=tmp_path)
    ckpt = wd / 'iter_8.pth'
    assert ckpt.is_file() and (wd / 'config.yaml').is_file()
    metrics = tmp_path / 'metrics.json'
    run_tool('test.py', str(wd / 'config.yaml'), str(ckpt), '--json-out',
             str(metrics), cwd=tmp_path)
    values = json.loads(metrics.read_text())
    assert {'accuracy', 'f1_macro', 'auroc'} <= set(values)
    photo = sorted((coco / 'images' / 'train2017').glob('*.jpg'))[0]
    out = run_tool('infer.py', str(wd), str(ckpt), '--image', str(photo),
                   '--text', 'is there a zebra in the image?', '--out-dir',
                   str(tmp_path / 'outputs'), cwd=tmp_path).stdout
    assert 'pred' in out
    picture = tmp_path / 'outputs' / 'vis' / f'{photo.stem}.png'
    assert picture.is_file() and picture.stat().st_size > 1000
