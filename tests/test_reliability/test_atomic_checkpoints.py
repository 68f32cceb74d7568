"""Checkpoints are complete or absent: interrupted and failed writes leave
the previous checkpoint loadable and --resume auto picks the newest
complete one."""
from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from mmfusion.utils import checkpoint as ck

ROOT = Path(__file__).resolve().parents[2]


def _state(step: int) -> dict:
    return {'meta': {'iter': step}, 'state_dict': {'w': torch.full((64, ),
                                                               float(step))}}


def _save_step(folder: Path, step: int) -> Path:
    path = folder / f'iter_{step}.pth'
    ck.atomic_save(_state(step), str(path))
    ck.atomic_write_text(str(folder / 'last_checkpoint'), str(path))
    return path


def _tmp_files(folder: Path):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith('.tmp'))


def test_disk_full_keeps_previous_and_says_so(tmp_path, monkeypatch):
    first = _save_step(tmp_path, 6)
    real_save = torch.save

    def disk_full(obj, f, *args, **kwargs):
        f.write(b'half a checkpoint' * 100)
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(torch, 'save', disk_full)
    with pytest.raises(ck.CheckpointSaveError, match='disk is full') as info:
        ck.atomic_save(_state(12), str(tmp_path / 'iter_12.pth'))
    assert 'iter_12.pth' in str(info.value)
    monkeypatch.setattr(torch, 'save', real_save)
    assert not (tmp_path / 'iter_12.pth').exists()
    assert _tmp_files(tmp_path) == []  # the partial file is removed
    assert ck.safe_load_checkpoint(str(first))['meta']['iter'] == 6
    assert ck.find_resume_checkpoint(str(tmp_path)) == str(first)


def test_permission_error_is_a_clear_failure(tmp_path, monkeypatch):
    target = tmp_path / 'iter_6.pth'
    ck.atomic_save(_state(1), str(target))

    def denied(src, dst):
        raise PermissionError(errno.EACCES, 'Permission denied', dst)

    monkeypatch.setattr(os, 'replace', denied)
    with pytest.raises(ck.CheckpointSaveError, match='Permission denied'):
        ck.atomic_save(_state(6), str(target))
    monkeypatch.undo()
    # The old contents of the same name are intact.
    assert ck.safe_load_checkpoint(str(target))['meta']['iter'] == 1
    assert _tmp_files(tmp_path) == []


KILLED_WRITER = r'''
import os, signal, sys, torch
sys.path.insert(0, sys.argv[1])
from mmfusion.utils import checkpoint as ck
folder = sys.argv[2]
state = lambda s: {"meta": {"iter": s},
                   "state_dict": {"w": torch.ones(1 << 16)}}
ck.atomic_save(state(6), f"{folder}/iter_6.pth")
ck.atomic_write_text(f"{folder}/last_checkpoint", f"{folder}/iter_6.pth")
real = torch.save
def dying(obj, f, *a, **k):
    f.write(b"PK\x03\x04 partial bytes" * 4096)
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)   # killed mid-write
torch.save = dying
ck.atomic_save(state(12), f"{folder}/iter_12.pth")
'''


def test_writer_killed_mid_write(tmp_path):
    proc = subprocess.run([sys.executable, '-c', KILLED_WRITER, str(ROOT),
                           str(tmp_path)], capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert not (tmp_path / 'iter_12.pth').exists()
    assert len(_tmp_files(tmp_path)) == 1  # the half-written temporary
    assert (tmp_path / 'last_checkpoint').read_text().endswith('iter_6.pth')
    newest = ck.find_resume_checkpoint(str(tmp_path))
    assert newest == str(tmp_path / 'iter_6.pth')
    assert ck.safe_load_checkpoint(newest)['meta']['iter'] == 6
    # The CheckpointHook removes such leftovers when training starts.
    assert ck.remove_stale_tmp_files(str(tmp_path))
    assert _tmp_files(tmp_path) == []


def test_blocked_writer_is_invisible_until_complete(tmp_path, monkeypatch):
    first = _save_step(tmp_path, 6)
    started, release = threading.Event(), threading.Event()
    real_save = torch.save

    def slow(obj, f, *args, **kwargs):
        f.write(b'PK\x03\x04 first half')
        started.set()
        release.wait(30)
        f.seek(0)
        f.truncate()
        real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, 'save', slow)
    writer = threading.Thread(target=_save_step, args=(tmp_path, 12))
    writer.start()
    try:
        assert started.wait(30)
        # Mid-write: no iter_12.pth, last_checkpoint still names iter_6.
        assert not (tmp_path / 'iter_12.pth').exists()
        assert ck.find_resume_checkpoint(str(tmp_path)) == str(first)
        assert ck.safe_load_checkpoint(str(first))['meta']['iter'] == 6
    finally:
        release.set()
        writer.join(30)
    assert ck.find_resume_checkpoint(str(tmp_path)) == str(
        tmp_path / 'iter_12.pth')
    assert _tmp_files(tmp_path) == []


@pytest.mark.parametrize('record', ['truncated', 'empty', 'missing'])
def test_resume_auto_skips_incomplete_newest(tmp_path, record):
    _save_step(tmp_path, 6)
    good = _save_step(tmp_path, 12)
    bad = tmp_path / 'iter_18.pth'
    # A checkpoint cut short (e.g. copied by hand, or written by another
    # tool), named by last_checkpoint.
    bad.write_bytes(good.read_bytes()[:1000])
    text = {'truncated': str(bad), 'empty': '',
            'missing': str(tmp_path / 'iter_24.pth')}[record]
    (tmp_path / 'last_checkpoint').write_text(text)
    assert not ck.is_complete_checkpoint(str(bad))
    assert ck.find_resume_checkpoint(str(tmp_path)) == str(good)


def test_no_checkpoint_means_none(tmp_path):
    assert ck.find_resume_checkpoint(str(tmp_path)) is None
