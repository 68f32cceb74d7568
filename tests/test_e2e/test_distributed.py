"""tools/dist_train.sh with 2 CPU processes (gloo) equals one process with
the same global batch, and the ranks' weights agree."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]

# No BatchNorm (per-rank batch statistics would differ from one process's)
# and SGD (Adam's normalisation amplifies float rounding where grads ~ 0).
COMMON = [
    'model/fusion=concat', 'model.image_encoder.norm=false',
    'model.image_encoder.channels=[8,16]', 'model.image_encoder.strides=[2,2]',
    'model.text_encoder.embed_dims=16', 'model.text_encoder.hidden_dims=16',
    'model.fusion.out_dim=32', 'model.fusion.hidden_dims=[32]',
    'model.head.hidden_dims=[32]',
    'optim_wrapper.optimizer.type=SGD', 'optim_wrapper.optimizer.lr=0.05',
    'optim_wrapper.optimizer.weight_decay=0.0',
    'param_scheduler=[]', 'train_cfg.max_iters=6', 'train_cfg.val_interval=6',
    'default_hooks.checkpoint.interval=6', 'test_after_train=false',
    'shapes_generator.train_quads=24', 'shapes_generator.val_quads=4',
    'shapes_generator.test_quads=4', 'shapes_generator.control_quads=4',
    'train_dataloader.num_workers=0', 'val_dataloader.num_workers=0',
    'test_dataloader.num_workers=0', '~train_dataloader.persistent_workers',
    '~val_dataloader.persistent_workers', 'env_cfg.torch_num_threads=1',
    'randomness.deterministic=true', 'train_dataloader.sampler.homogeneous_key=null',
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_two_process_run_equals_one_process(tmp_path):
    data = f'data_root={tmp_path}/data'
    env = {**os.environ, 'PYTHON': sys.executable,
           'PORT': str(free_port()), 'OMP_NUM_THREADS': '1'}
    one = subprocess.run(
        [sys.executable, str(ROOT / 'tools' / 'train.py'), 'cls_shapes',
         *COMMON, data, 'train_dataloader.batch_size=16', '--work-dir',
         str(tmp_path / 'one')], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-4000:]
    two = subprocess.run(
        ['bash', str(ROOT / 'tools' / 'dist_train.sh'), 'cls_shapes', '2',
         *COMMON, data, 'train_dataloader.batch_size=8', '--work-dir',
         str(tmp_path / 'two')], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=300)
    assert two.returncode == 0, (two.stdout[-3000:], two.stderr[-4000:])
    log = two.stdout + two.stderr
    assert 'DistConsistencyHook: weight checksums per rank' in log
    a = torch.load(tmp_path / 'one' / 'iter_6.pth', weights_only=True)
    b = torch.load(tmp_path / 'two' / 'iter_6.pth', weights_only=True)
    sa, sb = a['state_dict'], b['state_dict']
    assert sa.keys() == sb.keys()
    worst = max((sa[k].double() - sb[k].double()).abs().max().item()
                for k in sa if torch.is_floating_point(sa[k]))
    assert worst < 1e-6, worst
    # the checkpoints hold real weights, not an empty or zeroed state
    init_diff = max((sa[k].double()).abs().max().item() for k in sa
                    if torch.is_floating_point(sa[k]))
    assert init_diff > 0
