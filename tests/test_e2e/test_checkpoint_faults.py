"""A real training process whose checkpoint save fails (disk full) stops with
a clear message and keeps the previous checkpoint, even with
max_keep_ckpts=1; --resume auto then continues from it."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
TRAIN = str(ROOT / 'tools' / 'train.py')

CONFIG = [
    'cls_shapes', 'model/fusion=concat',
    'model.image_encoder.channels=[8,16]', 'model.image_encoder.strides=[2,2]',
    'model.text_encoder.embed_dims=16', 'model.text_encoder.hidden_dims=16',
    'model.fusion.out_dim=32', 'model.fusion.hidden_dims=[32]',
    'model.head.hidden_dims=[32]',
    'shapes_generator.train_quads=8', 'shapes_generator.val_quads=4',
    'shapes_generator.test_quads=4', 'shapes_generator.control_quads=4',
    'train_dataloader.batch_size=8', 'train_dataloader.num_workers=0',
    'train_dataloader.sampler.homogeneous_key=null',
    'train_cfg.max_iters=18', 'train_cfg.val_interval=100',
    'default_hooks.checkpoint.interval=6',
    'default_hooks.checkpoint.max_keep_ckpts=1',
    'param_scheduler=[]', 'test_after_train=false',
    'env_cfg.torch_num_threads=1',
]

# tools/train.py with torch.save failing (disk full) on its second call,
# i.e. while writing iter_12.pth.
DISK_FULL = r'''
import errno, runpy, sys, torch
real, calls = torch.save, [0]
def save(obj, f, *args, **kwargs):
    calls[0] += 1
    if calls[0] == 2:
        f.write(b"PK\x03\x04 part of a checkpoint" * 1000)
        raise OSError(errno.ENOSPC, "No space left on device")
    return real(obj, f, *args, **kwargs)
torch.save = save
sys.argv = [sys.argv[1]] + sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
'''


@pytest.mark.slow
def test_failed_save_stops_keeps_previous_and_resumes(tmp_path):
    wd = tmp_path / 'wd'
    args = [*CONFIG, f'data_root={tmp_path}/data', '--work-dir', str(wd)]
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    proc = subprocess.run([sys.executable, '-c', DISK_FULL, TRAIN, *args],
                          cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr[-3000:]
    err = proc.stderr
    assert re.search(r'error: could not write \S*iter_12\.pth: No space left '
                     r'on device \(the disk is full\)', err), err[-2000:]
    assert 'checkpoints written before are intact' in err
    assert 'Traceback' not in err
    # Previous checkpoint kept (max_keep_ckpts=1 removes it only after the
    # next one is complete), last_checkpoint still names it, no leftovers.
    names = sorted(p.name for p in wd.iterdir() if p.suffix in ('.pth',
                                                                 '.tmp'))
    assert names == ['iter_6.pth'], names
    assert (wd / 'last_checkpoint').read_text().endswith('iter_6.pth')
    ckpt = torch.load(wd / 'iter_6.pth', weights_only=True)
    assert ckpt['meta']['iter'] == 6

    resumed = subprocess.run([sys.executable, TRAIN, *args, '--resume'],
                             cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    out = resumed.stdout + resumed.stderr
    assert 'Resuming training: start iteration 7 of 18' in out, out[-3000:]
    assert (wd / 'iter_18.pth').is_file()
    assert not (wd / 'iter_6.pth').exists()  # rotated out once 12 was saved
