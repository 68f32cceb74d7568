"""tools/dist_train.sh with 2 CPU processes: only rank 0 writes logs,
checkpoints and config.yaml; when a rank dies the job ends within 60 s with
a non-zero exit and a message naming the dead rank."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]

CONFIG = [
    'model/fusion=concat', 'model.image_encoder.norm=false',
    'model.image_encoder.channels=[8,16]', 'model.image_encoder.strides=[2,2]',
    'model.text_encoder.embed_dims=16', 'model.text_encoder.hidden_dims=16',
    'model.fusion.out_dim=32', 'model.fusion.hidden_dims=[32]',
    'model.head.hidden_dims=[32]', 'param_scheduler=[]',
    # Long enough that it is still training when a rank is killed.
    'train_cfg.max_iters=100000', 'train_cfg.val_interval=100000',
    'default_hooks.checkpoint.interval=3', 'default_hooks.logger.interval=1',
    'test_after_train=false', 'train_dataloader.batch_size=4',
    'shapes_generator.train_quads=8', 'shapes_generator.val_quads=4',
    'shapes_generator.test_quads=4', 'shapes_generator.control_quads=4',
    'train_dataloader.num_workers=0', 'env_cfg.torch_num_threads=1',
    'train_dataloader.sampler.homogeneous_key=null',
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _env_of(pid: int) -> dict:
    try:
        raw = Path(f'/proc/{pid}/environ').read_bytes()
    except OSError:
        return {}
    return dict(item.split('=', 1) for item in raw.decode(
        errors='replace').split('\0') if '=' in item)


def _descendants(root: int):
    children = {}
    for stat in Path('/proc').glob('[0-9]*/stat'):
        try:
            fields = stat.read_text().rsplit(')', 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    todo, out = [root], []
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _rank_pid(root: int, rank: int):
    for pid in _descendants(root):
        env = _env_of(pid)
        if env.get('RANK') == str(rank) and 'TORCHELASTIC_RUN_ID' in env:
            return pid
    return None


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith('linux'),
                    reason='reads /proc')
def test_dead_rank_ends_job_and_only_rank0_writes(tmp_path):
    wd = tmp_path / 'wd'
    env = {**os.environ, 'PYTHON': sys.executable, 'PORT': str(_free_port()),
           'OMP_NUM_THREADS': '1'}
    job = subprocess.Popen(
        ['bash', str(ROOT / 'tools' / 'dist_train.sh'), 'cls_shapes', '2',
         *CONFIG, f'data_root={tmp_path}/data', '--work-dir', str(wd)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.time() + 240
        while not (wd / 'iter_6.pth').exists():
            assert job.poll() is None, job.communicate()[0][-4000:]
            assert time.time() < deadline, 'no checkpoint in time'
            time.sleep(0.1)
        # Rank 0 alone wrote the work dir.
        logs = [p.name for p in wd.rglob('*.log')]
        assert len(logs) == 1 and 'rank' not in logs[0], logs
        assert not [p for p in wd.rglob('*rank1*')]
        assert (wd / 'config.yaml').is_file()
        assert len([p for p in wd.glob('*.py')]) == 1  # the Runner's dump
        meta = torch.load(wd / 'iter_6.pth', weights_only=True)['meta']
        assert meta['written_by_rank'] == 0 and meta['world_size'] == 2

        victim = _rank_pid(job.pid, 1)
        assert victim, 'rank 1 not found'
        os.kill(victim, signal.SIGKILL)
        killed_at = time.time()
        out, _ = job.communicate(timeout=90)
        elapsed = time.time() - killed_at
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            job.communicate()
    assert job.returncode != 0
    assert elapsed < 60, elapsed
    assert re.search(r'rank\s*:\s*1 \(local_rank: 1\)', out), out[-3000:]
    assert re.search(r'exitcode\s*:\s*-9', out), out[-3000:]
    # No process of the job is left behind.
    time.sleep(0.5)
    assert _descendants(job.pid) == []
