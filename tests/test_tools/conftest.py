"""A tiny trained run shared by the users'-tools tests.

One training process (a few seconds of training): a cross-attention model
(so predictions carry attention), logged to TensorBoard as well
(``runtime=tensorboard``) at every iteration, validated twice.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Tiny data (32 train, 8 val, 32 test samples) and loading in-process.
TINY_DATA = [
    'shapes_generator.train_quads=8', 'shapes_generator.val_quads=2',
    'shapes_generator.test_quads=8', 'shapes_generator.control_quads=2',
    'train_dataloader.num_workers=0', 'val_dataloader.num_workers=0',
    'test_dataloader.num_workers=0', '~train_dataloader.persistent_workers',
    '~val_dataloader.persistent_workers',
]


@pytest.fixture(scope='session')
def tiny_run(tmp_path_factory):
    """``(cwd, work dir)`` of a 4-iteration cross-attention training."""
    cwd = tmp_path_factory.mktemp('tools_run')
    wd = cwd / 'wd'
    cmd = [sys.executable, str(ROOT / 'tools' / 'train.py'), 'cls_shapes',
           'model/fusion=cross_attention', 'model.fusion.num_layers=1',
           'model.fusion.embed_dims=32', 'runtime=tensorboard',
           f'data_root={cwd}/data', *TINY_DATA, 'train_cfg.max_iters=4',
           'train_cfg.val_interval=2', 'param_scheduler=[]',
           'default_hooks.logger.interval=1', 'test_after_train=false',
           '--work-dir', str(wd)]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ,
                                            'MMFUSION_PROGRESS': '0'})
    if proc.returncode != 0:
        raise AssertionError(f'training failed:\n{proc.stdout[-3000:]}\n'
                             f'{proc.stderr[-5000:]}')
    assert (wd / 'iter_4.pth').is_file()
    return cwd, wd


@pytest.fixture(scope='session')
def tiny_images(tiny_run):
    """Three test-split images of the tiny run's data."""
    cwd, _ = tiny_run
    images = sorted((cwd / 'data').glob('cls-*/images/test/*.png'))[:3]
    assert len(images) == 3
    return images


@pytest.fixture(scope='session')
def tiny_data_args(tiny_run):
    """Overrides that select the tiny run's data (generated already)."""
    cwd, _ = tiny_run
    return [f'data_root={cwd}/data', *TINY_DATA]
