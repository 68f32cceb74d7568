"""tools/test.py robustness flags end to end, on a tiny trained checkpoint."""
from __future__ import annotations

import json
import math

import pytest

from test_train_cli import run_tool

# Tiny data (32 test samples) and a 2-iteration training: the checkpoint
# only has to load, not to be good.
TINY = [
    'shapes_generator.train_quads=8', 'shapes_generator.val_quads=2',
    'shapes_generator.test_quads=8', 'shapes_generator.control_quads=2',
    'train_dataloader.num_workers=0', 'val_dataloader.num_workers=0',
    'test_dataloader.num_workers=0', '~train_dataloader.persistent_workers',
    '~val_dataloader.persistent_workers', 'train_cfg.max_iters=2',
    'train_cfg.val_interval=2', 'param_scheduler=[]',
    'test_after_train=false',
]


@pytest.fixture(scope='module')
def tiny_ckpt(tmp_path_factory):
    cwd = tmp_path_factory.mktemp('robust')
    run_tool('train.py', 'cls_shapes', f'data_root={cwd}/data', *TINY,
             '--work-dir', str(cwd / 'wd'), cwd=cwd)
    return cwd


def test_drop_and_corrupt_keys_and_curve(tiny_ckpt):
    wd, out = tiny_ckpt / 'wd', tiny_ckpt / 'metrics.json'
    run_tool('test.py', str(wd / 'config.yaml'), str(wd / 'iter_2.pth'),
             '--drop-modality', 'text', '--drop-modality', 'image',
             '--corrupt', 'image_noise:0.1,0.5', '--json-out', str(out),
             cwd=tiny_ckpt)
    metrics = json.loads(out.read_text())
    assert isinstance(metrics, dict)
    assert all(isinstance(v, float) and math.isfinite(v)
               for v in metrics.values())
    for setting in ('drop_text', 'drop_image', 'image_noise@0.1',
                    'image_noise@0.5'):
        for key in ('accuracy', 'f1_macro', 'accuracy/colour'):
            assert f'robust/{setting}/{key}' in metrics, sorted(metrics)
    for key in ('accuracy', 'f1_macro', 'auroc', 'accuracy/count'):
        assert key in metrics  # the clean metrics keep their names
    gain = metrics['robust/gain_over_best_unimodal']
    assert gain == pytest.approx(metrics['accuracy'] - max(
        metrics['robust/drop_text/accuracy'],
        metrics['robust/drop_image/accuracy']))
    assert not any(k.startswith('robust/') and k.count('/') == 1
                   and k != 'robust/gain_over_best_unimodal'
                   for k in metrics)
    png = wd / 'robustness.png'
    assert png.is_file() and png.read_bytes()[:4] == b'\x89PNG'


def test_show_dir_gets_curve_and_only_clean_pictures(tiny_ckpt):
    wd, show = tiny_ckpt / 'wd', tiny_ckpt / 'show'
    run_tool('test.py', str(wd / 'config.yaml'), str(wd / 'iter_2.pth'),
             '--drop-modality', 'text', '--show-dir', str(show),
             cwd=tiny_ckpt)
    assert (show / 'robustness.png').is_file()
    # One picture per clean test sample (32); the extra runs draw none.
    assert len(list(show.glob('0*.png'))) == 32


def test_bad_corruption_exits_2(tmp_path):
    proc = run_tool('test.py', 'cls_shapes', str(tmp_path / 'x.pth'),
                    '--corrupt', 'image_fog:0.1', cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert 'valid kinds: image_noise, image_blur' in proc.stderr
