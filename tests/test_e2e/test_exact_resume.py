"""A SIGKILLed tools/train.py resumed with --resume auto ends exactly where
an uninterrupted run of the same config ends (weights, optimiser state,
schedulers, random states, test metrics), on the CPU."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
TRAIN = str(ROOT / 'tools' / 'train.py')

MAX_ITERS = 24
# 16 quads = 64 samples = 8 batches an epoch: the run crosses epochs, and a
# checkpoint every 4 iterations falls mid-epoch every other time.
# Randomness everywhere: a random flip in the data pipeline (per-batch
# seeds), modality dropout and head dropout in the model (torch state),
# AdamW + a scheduler.
CONFIG = [
    'cls_shapes', 'model/fusion=concat',
    'model.image_encoder.channels=[8,16]', 'model.image_encoder.strides=[2,2]',
    'model.text_encoder.embed_dims=16', 'model.text_encoder.hidden_dims=16',
    'model.fusion.out_dim=32', 'model.fusion.hidden_dims=[32]',
    'model.head.hidden_dims=[32]', 'model.head.dropout=0.2',
    '+model.modality_dropout={image: 0.2, text: 0.2}',
    'train_pipeline=[{type: CachedLoadImageFromFile}, {type: RandomFlip,'
    ' prob: 0.5, direction: horizontal}, {type: PackMultimodalInputs}]',
    'test_pipeline=[{type: CachedLoadImageFromFile}, '
    '{type: PackMultimodalInputs}]',
    'shapes_generator.train_quads=16', 'shapes_generator.val_quads=4',
    'shapes_generator.test_quads=4', 'shapes_generator.control_quads=4',
    'train_dataloader.batch_size=8', 'train_dataloader.num_workers=0',
    'train_dataloader.sampler.homogeneous_key=null',
    f'train_cfg.max_iters={MAX_ITERS}', 'train_cfg.val_interval=12',
    'default_hooks.checkpoint.interval=4',
    'default_hooks.checkpoint.max_keep_ckpts=3',
    'default_hooks.logger.interval=2',
    'param_scheduler.0.end=5', 'param_scheduler.1.begin=5',
    'env_cfg.torch_num_threads=1', 'randomness.seed=7',
    'randomness.deterministic=true',
]


def _train(work_dir: Path, data: Path, *extra: str, **kw):
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONHASHSEED': '0'}
    return subprocess.Popen(
        [sys.executable, TRAIN, *CONFIG, f'data_root={data}',
         '--work-dir', str(work_dir), *extra], cwd=work_dir.parent, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def _wait(proc, timeout=240) -> str:
    out, _ = proc.communicate(timeout=timeout)
    return out


def _kill_after_first_checkpoint(proc, work_dir: Path, timeout=240):
    """SIGKILL once a checkpoint is complete (last_checkpoint written)."""
    deadline = time.time() + timeout
    record = work_dir / 'last_checkpoint'
    while time.time() < deadline:
        if record.exists() and record.read_text().strip():
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=60)
            return
        if proc.poll() is not None:
            break
        time.sleep(0.005)
    out = proc.communicate()[0]
    raise AssertionError(f'no checkpoint before the run ended (rc '
                         f'{proc.returncode}): {out[-3000:]}')


def _checkpoint(path: Path) -> dict:
    return torch.load(path, map_location='cpu', weights_only=True)


def _assert_same(a, b, where=''):
    if torch.is_tensor(a):
        assert torch.is_tensor(b) and a.dtype == b.dtype and \
            a.shape == b.shape and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), (where, a.keys() ^ b.keys())
        for k in a:
            _assert_same(a[k], b[k], f'{where}.{k}')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f'{where}[{i}]')
    else:
        assert a == b, (where, a, b)


@pytest.mark.slow
def test_sigkill_then_resume_auto_is_bitwise_exact(tmp_path):
    data = tmp_path / 'data'
    # Generate the data first so both runs start from the same files.
    from mmfusion.datasets.shapes import ensure_shapes_dataset
    ensure_shapes_dataset(str(data), train_quads=16, val_quads=4,
                          test_quads=4, control_quads=4)
    ref_dir, run_dir = tmp_path / 'reference', tmp_path / 'interrupted'
    ref_dir.mkdir()
    run_dir.mkdir()
    # The uninterrupted run and the one to kill run side by side.
    procs = [_train(ref_dir, data), _train(run_dir, data)]
    try:
        reference, victim = procs
        _kill_after_first_checkpoint(victim, run_dir)
        assert victim.returncode == -signal.SIGKILL
        assert not (run_dir / f'iter_{MAX_ITERS}.pth').exists(), \
            'killed too late: the last checkpoint was already written'
        procs.append(_train(run_dir, data, '--resume', 'auto'))
        resumed = procs[-1]
        ref_out = _wait(reference)
        out = _wait(resumed)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert reference.returncode == 0, ref_out[-4000:]
    assert resumed.returncode == 0, out[-4000:]

    start = re.search(r'Resuming training: start iteration (\d+) of (\d+)'
                      r'.*', out)
    assert start, out[-3000:]
    first, end = int(start.group(1)), int(start.group(2))
    # Resumed from a checkpoint strictly between the start and the end.
    assert end == MAX_ITERS and 0 < first - 1 < end, start.group(0)
    assert 'data position from the checkpoint' in start.group(0)

    a = _checkpoint(ref_dir / f'iter_{MAX_ITERS}.pth')
    b = _checkpoint(run_dir / f'iter_{MAX_ITERS}.pth')
    _assert_same(a['state_dict'], b['state_dict'], 'state_dict')
    _assert_same(a['optimizer'], b['optimizer'], 'optimizer')
    _assert_same(a['param_schedulers'], b['param_schedulers'], 'schedulers')
    _assert_same(a['resume_state'], b['resume_state'], 'resume_state')
    assert a['meta']['tokenizer'] == b['meta']['tokenizer']
    ma = json.loads((ref_dir / 'test_metrics.json').read_text())
    mb = json.loads((run_dir / 'test_metrics.json').read_text())
    assert ma == mb
