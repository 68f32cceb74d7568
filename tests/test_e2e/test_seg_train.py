"""Referring segmentation end to end: a short training run learns, and
tools/test.py writes the JSON keys and the --show-dir pictures."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable

# Six quads: 12 images, 24 (image, phrase) samples of the four types.
FEW = [
    'shapes_generator.train_quads=6', 'shapes_generator.val_quads=2',
    'shapes_generator.test_quads=2', 'shapes_generator.control_quads=2',
    'train_dataloader.batch_size=8', 'train_dataloader.num_workers=0',
    'val_dataloader.num_workers=0', 'test_dataloader.num_workers=0',
    '~train_dataloader.persistent_workers',
    '~val_dataloader.persistent_workers',
    # Evaluate on the training images: the test is that it learns them.
    'test_dataloader.dataset.split=train',
    'default_hooks.logger.interval=25', 'env_cfg.torch_num_threads=1',
]


def run_tool(tool: str, *args: str, cwd: Path,
             timeout: int = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run([PY, str(ROOT / 'tools' / tool), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ))
    if proc.returncode != 0:
        raise AssertionError(f'{tool} failed ({proc.returncode}):\n'
                             f'{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}')
    return proc


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """100 iterations of batch 8 on 24 samples (about 35 s on 2 cores)."""
    cwd = tmp_path_factory.mktemp('seg_train')
    run_tool('train.py', 'seg_shapes', f'data_root={cwd}/data', *FEW,
             'train_cfg.max_iters=100', 'train_cfg.val_interval=100',
             'param_scheduler.0.end=10', 'param_scheduler.1.begin=10',
             '--work-dir', str(cwd / 'wd'), cwd=cwd)
    return cwd


def test_short_training_learns_the_images(trained):
    metrics = json.loads((trained / 'wd' / 'test_metrics.json').read_text())
    assert metrics['IoU/referred'] >= 0.5, metrics
    assert (trained / 'wd' / 'iter_100.pth').is_file()
    assert list((trained / 'wd').glob('best_IoU_referred_iter_*.pth'))


def test_test_tool_json_and_pictures(trained):
    out, show = trained / 'metrics.json', trained / 'show'
    run_tool('test.py', str(trained / 'wd' / 'config.yaml'),
             str(trained / 'wd' / 'iter_100.pth'), '--json-out', str(out),
             '--show-dir', str(show), cwd=trained)
    metrics = json.loads(out.read_text())
    for key in ('mIoU', 'IoU/referred', 'IoU/background', 'aAcc'):
        assert key in metrics
    assert all(isinstance(v, float) and 0 <= v <= 1 for v in metrics.values())
    pictures = sorted(show.glob('*.png'))
    assert 0 < len(pictures) <= 50
    from PIL import Image
    width, height = Image.open(pictures[0]).size
    # Truth and prediction side by side (each at least 256 px), text below.
    assert width >= 512 and height > 256
