"""Benchmark sections: DDP scaling (2 gloo processes vs 1) and inference
throughput, in their quick modes on the tiny shapes data."""
from __future__ import annotations

import math
import os
import time
from pathlib import Path

import pytest
import torch
from conftest import TINY_SHAPES

from mmfusion.benchmark.ddp import (TEARDOWN_GRACE_S, DDPBenchmarkError, _Spec,
                                    run_ddp_scaling, run_world, shard)
from mmfusion.benchmark.inference import run_inference

DDP_NAMES = {'ddp_scaling', 'ddp/1proc/samples_per_s',
             'ddp/2proc/samples_per_s', 'ddp/allreduce_ms',
             'ddp/no_comm_scaling',
             *[f'ddp/{n}proc/ms/{phase}' for n in (1, 2)
               for phase in ('preprocess', 'forward', 'backward', 'clip',
                             'optimizer')]}
INFER_NAMES = {f'infer/{t}/bs{b}' for t in ('cls', 'det', 'seg')
               for b in (1, 32)}


def _fail_on_rank_1(rank: int, world_size: int) -> None:
    # Rank 0 goes on into init_process_group and waits for a peer that
    # never comes: the parent must still return (and kill it).
    if rank == 1:
        raise RuntimeError('injected failure on rank 1')


def _die_silently(rank: int, world_size: int) -> None:
    os._exit(3)  # no traceback, no report: a crash as seen by the parent


def _hang_in_teardown(rank: int, world_size: int) -> None:
    # Rank 0's process-group teardown never returns, as it did on CI
    # (destroy_process_group hangs now and then: pytorch#75097).
    if rank == 0:
        import torch.distributed as dist
        dist.destroy_process_group = lambda *a, **k: time.sleep(600)


def _dummy_spec(hook) -> _Spec:
    return _Spec(model=torch.nn.Linear(1, 1), batches=[], optimizer={
        'type': 'SGD', 'lr': 0.1}, max_norm=None, warmup=0, timeout_s=30,
        hook=hook)


def test_ddp_scaling_quick(data_root: Path):
    start = time.perf_counter()
    res = run_ddp_scaling(quick=True, overrides=TINY_SHAPES,
                          data_root=str(data_root))
    elapsed = time.perf_counter() - start
    assert set(res) == DDP_NAMES
    assert all(math.isfinite(v) and v > 0 for v in res.values()), res
    assert 0 < res['ddp_scaling'] < 2.5, res
    assert res['ddp_scaling'] == pytest.approx(
        res['ddp/2proc/samples_per_s'] / res['ddp/1proc/samples_per_s'])
    # The phases are parts of a step: together about as long as the whole
    # (the default global batch: 32 samples a step). Medians of the parts
    # need not sum to at most the median of the whole, and the quick run
    # times few steps on cores the suite shares (CI saw 1.11x): the bound is
    # loose, a sanity check that no phase is counted far too long.
    for n in (1, 2):
        step_ms = 1000 * 32 / res[f'ddp/{n}proc/samples_per_s']
        parts = sum(v for k, v in res.items()
                    if k.startswith(f'ddp/{n}proc/ms/'))
        assert parts <= 1.3 * step_ms + 1.0, (n, parts, step_ms)
    # Budget 25 s on an idle machine; the margin absorbs a shared CPU.
    assert elapsed < 50, elapsed


def test_ddp_child_failure_raises_with_its_traceback(data_root: Path):
    start = time.perf_counter()
    with pytest.raises(DDPBenchmarkError) as info:
        run_ddp_scaling(quick=True, overrides=TINY_SHAPES,
                        data_root=str(data_root), steps=1, warmup=0,
                        timeout_s=60, worker_hook=_fail_on_rank_1)
    msg = str(info.value)
    assert 'rank 1 failed' in msg
    assert 'injected failure on rank 1' in msg and '_fail_on_rank_1' in msg
    assert time.perf_counter() - start < 30  # no wait for gloo's timeout


def test_ddp_child_crash_without_report_raises():
    with pytest.raises(DDPBenchmarkError, match='exited with code 3'):
        run_world(2, _dummy_spec(_die_silently), timeout_s=30)


def test_hung_teardown_after_report_costs_the_grace_not_the_timeout():
    start = time.perf_counter()
    times = run_world(2, _dummy_spec(_hang_in_teardown), timeout_s=120,
                      start_method='forkserver')
    assert times == []  # no batches: no timed steps, but both reported
    # Start-up (fork server, gloo rendezvous) plus TEARDOWN_GRACE_S.
    assert time.perf_counter() - start < TEARDOWN_GRACE_S + 40


def test_shard_splits_a_collated_batch():
    batch = {'inputs': {'img': [torch.full((1,), i) for i in range(4)],
                        'text': ['a', 'b', 'c', 'd']},
             'data_samples': list(range(4)), 'flag': 'x'}
    part = shard(batch, 1, 2)
    assert [int(t) for t in part['inputs']['img']] == [2, 3]
    assert part['inputs']['text'] == ['c', 'd']
    assert part['data_samples'] == [2, 3] and part['flag'] == 'x'
    assert shard(torch.arange(6), 0, 2).tolist() == [0, 1, 2]
    with pytest.raises(ValueError):
        shard([1, 2, 3], 0, 2)


def test_run_inference_quick(data_root: Path, tmp_path: Path):
    start = time.perf_counter()
    # One thread: on a shared 2-core machine, 2 OpenMP threads spin-wait
    # for a core another process holds, which makes this slow and erratic.
    res = run_inference(quick=True,
                        overrides_by_task={t: TINY_SHAPES
                                           for t in ('cls', 'det', 'seg')},
                        data_root=str(data_root), work_dir=str(tmp_path),
                        num_threads=1)
    elapsed = time.perf_counter() - start
    assert set(res) == INFER_NAMES
    assert all(math.isfinite(v) and v > 0 for v in res.values()), res
    # The inferencer read the work dir the way tools/infer.py does.
    for task in ('cls', 'det', 'seg'):
        assert (tmp_path / f'infer_{task}' / 'config.yaml').is_file()
        assert (tmp_path / f'infer_{task}' / 'bench_infer.pth').is_file()
    # Budget 20 s on an idle machine (after imports, data generated once
    # per session); the margin absorbs a shared CPU.
    assert elapsed < 40, elapsed
