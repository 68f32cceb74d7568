"""Benchmark section: data-parallel scaling of classification training.

The classification model (:data:`~mmfusion.benchmark.common.TASKS` ``cls``,
its default experiment) is trained for the same steps on the same global
batches in two settings, each in fresh child processes with one torch
thread per process:

- 1 process: the plain model (no process group, no wrapper), the whole
  global batch per step: what a user trains with on one core.
- 2 processes: torch.distributed on gloo over 127.0.0.1, the model wrapped
  in mmengine's :class:`~mmengine.model.MMDistributedDataParallel` (the
  wrapper the Runner uses on the CPU), each rank taking its half of every
  global batch, gradients all-reduced in the backward pass.

Figures:

- ``ddp/1proc/samples_per_s``, ``ddp/2proc/samples_per_s``: global batch
  size / median wall time of a training step (preprocess, forward,
  backward, all-reduce, gradient clipping, optimiser step), rank 0's clock,
  pooled over turns the two settings take in alternation (1, 2, 1, 2, ...)
  so that a drift in the machine's speed does not favour either.
- ``ddp_scaling``: their ratio, 2-process / 1-process throughput. 2.0 is
  perfect scaling on two cores; less measures the all-reduce and the
  per-step fixed costs that do not shrink with the per-rank batch (and, on
  a busy machine, the cores the processes did not get).
- ``ddp/no_comm_scaling``: the same for 2 processes that train on their
  halves of the batches with no process group at all (no all-reduce, no
  waiting for each other): the most that 2 processes get out of this
  machine for this work, so ``ddp_scaling`` over it is what data parallel
  itself costs.
- ``ddp/1proc/ms/<phase>``, ``ddp/2proc/ms/<phase>``: rank 0's median
  milliseconds in each phase of the step (preprocess, forward, backward
  with the all-reduce, clip, optimizer), and ``ddp/allreduce_ms``: an
  all-reduce of the gradients' size on its own, after a barrier. They say
  which part of a step does not halve.

Why child processes for both: both settings then start from the same state
(one torch thread set before any op, no thread pool inherited, the model
copied from the parent), so the ratio compares like with like.

Why ``forkserver`` by default: a child forked from the calling process
inherits whatever its other threads held at the moment of the fork (a lock
of the allocator, of logging, of a queue's feeder thread); in a long-lived
parent such as the test suite, one rank of a 2-process run once hung that
way on CI (rank 0 reported, rank 1 never did). The fork server is a fresh
single-threaded process, started once (torch and this module preloaded),
that forks every child: children still start in milliseconds, and the model
and batches are pickled to them. ``'fork'`` (each child calls
``torch.set_num_threads(1)`` before any op: GNU OpenMP's pool does not
survive a fork) and ``'spawn'`` remain available.
"""
from __future__ import annotations

import datetime
import multiprocessing.queues
import os
import pickle
import queue as queue_mod
import socket
import time
import traceback
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.multiprocessing as mp
from torch import nn

from mmfusion.apis.runner_config import cpu_ddp_wrapper_args

from .common import (build_optimizer, build_task_parts, median, next_batches,
                     task_config)

#: Called in every child first thing, as ``hook(rank, world_size)``; tests
#: inject failures with it. With ``spawn`` it must be picklable (a
#: module-level function).
WorkerHook = Callable[[int, int], None]

#: Steps timed and untimed warm-up steps (full run, ``quick``).
STEPS, WARMUP = 20, 3
QUICK_STEPS, QUICK_WARMUP = 4, 1
#: Turns each setting takes (1 process, 2 processes, 1, 2, ...), pooled:
#: this host's speed drifts by 10-20 % within a minute, and one turn each
#: gave ratios from 1.29 to 1.81 across runs.
ROUNDS, QUICK_ROUNDS = 4, 1


class DDPBenchmarkError(RuntimeError):
    """A benchmark child process failed; the message holds its traceback."""


@dataclass
class _Spec:
    """What every child needs; picklable, for ``spawn``.

    Attributes:
        model: the built model (train mode, tokenizer fitted); each child
            trains its own copy.
        batches: the global batches, warm-up ones first.
        optimizer: ``cfg.optim_wrapper.optimizer`` (type + kwargs).
        max_norm: gradient clipping norm (``optim_wrapper.clip_grad``).
        warmup: untimed steps before the timed ones.
        timeout_s: gloo's collective timeout, seconds.
        hook: see :data:`WorkerHook`.
        ddp_kwargs: extra arguments of the DDP wrapper.
    """

    model: nn.Module
    batches: List[dict]
    optimizer: Dict[str, Any]
    max_norm: Optional[float]
    warmup: int
    timeout_s: float
    hook: Optional[WorkerHook] = None
    ddp_kwargs: Dict[str, Any] = field(default_factory=dict)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the OS picks it: bind to 0)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return int(s.getsockname()[1])


def shard(value: Any, rank: int, world_size: int) -> Any:
    """Rank ``rank``'s contiguous share of a collated batch: every list,
    tuple and stacked tensor along its first axis is cut into
    ``world_size`` equal parts (dicts recursively); strings and other
    values are kept whole."""
    if isinstance(value, dict):
        return {k: shard(v, rank, world_size) for k, v in value.items()}
    if isinstance(value, (list, tuple, torch.Tensor)):
        n = len(value)
        if n % world_size:
            raise ValueError(f'a batch of {n} does not split into '
                             f'{world_size} equal parts')
        part = n // world_size
        chunk = value[rank * part:(rank + 1) * part]
        return type(value)(chunk) if isinstance(value, tuple) else chunk
    return value


#: Seconds a child that has reported may take to exit before it is stopped
#: (its process-group teardown can hang: see :func:`_worker`).
TEARDOWN_GRACE_S = 10.0

#: Phases of a step timed on their own (``ddp/<n>proc/ms/<phase>``).
PHASES = ('preprocess', 'forward', 'backward', 'clip', 'optimizer')


def _loss_step(wrapped: nn.Module, model: nn.Module,
               optimizer: torch.optim.Optimizer,
               max_norm: Optional[float],
               phases: Optional[Dict[str, List[float]]] = None
               ) -> Callable[[dict], float]:
    """:func:`~mmfusion.benchmark.common.train_step_fn` for a wrapped
    model: preprocess with the inner model's data preprocessor (DDP does
    not expose it), forward through the wrapper (so DDP's gradient hooks
    all-reduce in the backward pass), sum the loss terms, backward, clip,
    step. With ``phases``, each phase's seconds are appended to
    ``phases[name]`` (:data:`PHASES`; the backward includes the
    all-reduce)."""

    def step(data_batch: dict) -> float:
        marks = [time.perf_counter()]
        data = model.data_preprocessor(data_batch, True)
        marks.append(time.perf_counter())
        losses = wrapped(**data, mode='loss')
        loss = sum(v.mean() if isinstance(v, torch.Tensor) else sum(v)
                   for k, v in losses.items() if 'loss' in k)
        marks.append(time.perf_counter())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        marks.append(time.perf_counter())
        if max_norm:
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        marks.append(time.perf_counter())
        optimizer.step()
        marks.append(time.perf_counter())
        if phases is not None:
            for name, a, b in zip(PHASES, marks, marks[1:]):
                phases.setdefault(name, []).append(b - a)
        return float(loss.detach())

    return step


def _allreduce_seconds(model: nn.Module, repeats: int) -> List[float]:
    """Seconds of all-reducing a flat tensor as large as ``model``'s
    gradients, each after a barrier (the collective alone, no waiting)."""
    import torch.distributed as dist
    numel = sum(p.numel() for p in model.parameters() if p.requires_grad)
    flat = torch.zeros(numel)
    dist.all_reduce(flat)  # warm-up
    times = []
    for _ in range(repeats):
        dist.barrier()
        start = time.perf_counter()
        dist.all_reduce(flat)
        times.append(time.perf_counter() - start)
    return times


def _worker(rank: int, world_size: int, port: int, spec: Union[_Spec, bytes],
            results: multiprocessing.queues.Queue,
            communicate: bool = True) -> None:
    """One benchmark process: train ``spec``'s steps, report
    ``(step times in seconds of the timed steps, weight checksum, phase
    times)`` or the traceback through ``results``. With ``communicate``
    False, ``world_size`` processes each train on their shard of every
    batch with no process group: the same work per process as data
    parallel, minus the all-reduce and the waiting for each other."""
    try:
        # First, before any torch op: see the module docstring (fork).
        torch.set_num_threads(1)
        if isinstance(spec, bytes):
            spec = pickle.loads(spec)
        if spec.hook is not None:
            spec.hook(rank, world_size)
        model = spec.model
        wrapped: nn.Module = model
        distributed = world_size > 1 and communicate
        if distributed:
            import torch.distributed as dist
            from mmengine.model import MMDistributedDataParallel
            os.environ['MASTER_ADDR'] = '127.0.0.1'
            os.environ['MASTER_PORT'] = str(port)
            # Both ranks are on this host: loopback, whatever the hostname
            # resolves to (gloo picks its interface from the hostname).
            if os.path.isdir('/sys/class/net/lo'):
                os.environ.setdefault('GLOO_SOCKET_IFNAME', 'lo')
            dist.init_process_group(
                'gloo', init_method='env://', rank=rank,
                world_size=world_size,
                timeout=datetime.timedelta(seconds=spec.timeout_s))
            # device_ids=None: DDP rejects device ids for CPU modules.
            wrapped = MMDistributedDataParallel(
                module=model, **{**spec.ddp_kwargs, 'device_ids': None})
        optimizer = build_optimizer(model, SimpleNamespace(
            optim_wrapper=SimpleNamespace(optimizer=dict(spec.optimizer))))
        phases: Dict[str, List[float]] = {}
        step = _loss_step(wrapped, model, optimizer, spec.max_norm, phases)
        batches = [shard(b, rank, world_size) for b in spec.batches]
        times: List[float] = []
        for i, batch in enumerate(batches):
            start = time.perf_counter()
            step(batch)
            if i >= spec.warmup:
                times.append(time.perf_counter() - start)
        phases = {k: v[spec.warmup:] for k, v in phases.items()}
        if distributed:
            import torch.distributed as dist
            if batches:
                phases['allreduce'] = _allreduce_seconds(
                    model, max(5, len(times)))
            dist.barrier()  # nobody tears the group down under another
        # Proof the ranks trained one model (DDP averaged the gradients):
        # the parent compares the ranks' final weights by their sum.
        checksum = float(sum(p.detach().double().sum()
                             for p in model.parameters()))
        # Report before the teardown: destroy_process_group can hang now
        # and then (pytorch#75097; CI saw rank 0 never report after rank 1
        # had), and the parent stops a reported child that does not exit
        # (see TEARDOWN_GRACE_S), so a stuck teardown costs seconds, not
        # the whole timeout.
        results.put(('ok', rank, (times, checksum, phases)))
        if distributed:
            dist.destroy_process_group()
    except BaseException:  # noqa: B902 -- everything goes to the parent
        results.put(('error', rank, traceback.format_exc()))
        raise SystemExit(1)


def _stop(procs: Sequence[Any]) -> None:
    """Make sure no child outlives the call (a rank whose peer died waits
    in an all-reduce until gloo's timeout)."""
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout=5)
        if p.is_alive():
            p.kill()
            p.join(timeout=5)


def run_world(world_size: int, spec: _Spec, timeout_s: float = 300.0,
              start_method: str = 'fork',
              phases_out: Optional[Dict[str, List[float]]] = None,
              communicate: bool = True) -> List[float]:
    """Run ``world_size`` children on ``spec``; rank 0's timed step times
    (seconds). The ranks' final weights must agree. ``phases_out``, when
    given, is extended with rank 0's seconds per phase of the timed steps
    (:data:`PHASES`, and ``allreduce``: the gradients' all-reduce alone,
    with 2 or more processes). ``communicate=False``: no process group
    (see :func:`_worker`); the weights then differ and are not compared.

    Raises:
        DDPBenchmarkError: a child raised (its traceback is in the
            message), died without reporting, or the ranks' weights
            differ at the end.
        TimeoutError: the children did not finish within ``timeout_s``.
    """
    ctx = mp.get_context(start_method)
    if start_method == 'forkserver':
        # Imported once in the server, not in every child.
        ctx.set_forkserver_preload(['torch', __name__])
    results = ctx.Queue()
    port = free_port() if world_size > 1 and communicate else 0
    # Outside fork, the spec goes to the children as plain pickled bytes:
    # multiprocessing's own pickler would pass every tensor as a shared-
    # memory file descriptor (torch's reductions), too many for forkserver.
    payload = spec if start_method == 'fork' else pickle.dumps(spec)
    procs = [ctx.Process(target=_worker, name=f'mmfusion-ddp-bench-{r}',
                         args=(r, world_size, port, payload, results,
                               communicate),
                         daemon=True) for r in range(world_size)]
    deadline = time.monotonic() + timeout_s
    reported: Dict[int, Tuple[List[float], float, Dict]] = {}
    try:
        for p in procs:
            p.start()
        while len(reported) < world_size:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f'DDP benchmark ({world_size} processes): no result '
                    f'after {timeout_s:.0f} s (ranks reported: '
                    f'{sorted(reported)})')
            try:
                kind, rank, payload = results.get(timeout=min(0.5, left))
            except queue_mod.Empty:
                dead = [r for r, p in enumerate(procs) if r not in reported
                        and p.exitcode not in (None, 0)]
                if not dead:
                    continue
                # Its traceback may still be on its way through the pipe.
                try:
                    kind, rank, payload = results.get(timeout=1.0)
                except queue_mod.Empty:
                    raise DDPBenchmarkError(
                        f'DDP benchmark ({world_size} processes): rank '
                        f'{dead[0]} exited with code '
                        f'{procs[dead[0]].exitcode} without reporting'
                    ) from None
            if kind == 'error':
                raise DDPBenchmarkError(
                    f'DDP benchmark ({world_size} processes): rank {rank} '
                    f'failed; its traceback:\n{payload}')
            reported[rank] = payload
        # Every rank has reported: what is left is teardown. A child still
        # alive after the grace is stopped by _stop below.
        grace_end = time.monotonic() + TEARDOWN_GRACE_S
        for p in procs:
            p.join(timeout=max(0.0, grace_end - time.monotonic()))
    finally:
        _stop(procs)
        results.close()
        results.join_thread()
    sums = [reported[r][1] for r in range(world_size)]
    if communicate and max(sums) - min(sums) > 1e-6 * max(1.0,
                                                           abs(sums[0])):
        raise DDPBenchmarkError(
            f'DDP benchmark: the ranks ended with different weights '
            f'(checksums {sums}): the gradients were not synchronised')
    if phases_out is not None:
        for name, values in reported[0][2].items():
            phases_out.setdefault(name, []).extend(values)
    return reported[0][0]


def run_ddp_scaling(quick: bool = False, overrides: Sequence[str] = (),
                    data_root: Optional[str] = None,
                    steps: Optional[int] = None,
                    warmup: Optional[int] = None,
                    start_method: Optional[str] = None,
                    timeout_s: float = 300.0,
                    worker_hook: Optional[WorkerHook] = None,
                    ddp_kwargs: Optional[Dict[str, Any]] = None,
                    rounds: Optional[int] = None) -> Dict[str, float]:
    """Training throughput of 2 gloo processes against 1, same global batch.

    Args:
        quick: :data:`QUICK_STEPS` timed steps after :data:`QUICK_WARMUP`
            (pass the tiny-dataset overrides too); else :data:`STEPS` after
            :data:`WARMUP`.
        overrides: Hydra overrides of the ``cls`` experiment. The global
            batch is ``train_dataloader.batch_size`` (32 by default: 16 per
            rank with 2 processes); it must be even.
        data_root: where the shapes data lives (``data_root=`` override).
        steps, warmup: timed and untimed steps (override the defaults).
        start_method: ``'forkserver'`` (default where available),
            ``'fork'`` or ``'spawn'`` (module docstring).
        timeout_s: each setting's limit, seconds; past it the children are
            killed and :class:`TimeoutError` is raised.
        worker_hook: called as ``hook(rank, world_size)`` first thing in
            every child (tests use it to inject a failure).
        ddp_kwargs: extra arguments of the DDP wrapper (e.g.
            ``bucket_cap_mb``); default: what ``tools/train.py`` gives a
            CPU run of the config.
        rounds: turns each setting takes, alternating (1, 2, 1, 2, ...);
            every turn trains a fresh copy of the model on the same
            batches, and each rate pools its turns' timed steps (default
            :data:`ROUNDS`, :data:`QUICK_ROUNDS` with ``quick``).

    Returns:
        ``ddp/1proc/samples_per_s`` and ``ddp/2proc/samples_per_s``
        (training samples per second, global batch / median step time),
        ``ddp_scaling`` (2-process / 1-process; 2.0 is perfect),
        ``ddp/no_comm_scaling`` (the same without a process group), the
        median milliseconds of each phase of a step,
        ``ddp/<n>proc/ms/<phase>`` (:data:`PHASES`; the 2-process backward
        includes the all-reduce), and ``ddp/allreduce_ms``, the all-reduce
        of the gradients' size alone.

    Raises:
        DDPBenchmarkError: a child failed (with its traceback).
    """
    steps = steps if steps is not None else (QUICK_STEPS if quick else STEPS)
    warmup = warmup if warmup is not None else (
        QUICK_WARMUP if quick else WARMUP)
    rounds = rounds if rounds is not None else (
        QUICK_ROUNDS if quick else ROUNDS)
    if steps < 1 or warmup < 0 or rounds < 1:
        raise ValueError(f'steps and rounds must be >= 1 and warmup >= 0, '
                         f'got {steps}, {rounds}, {warmup}')
    if start_method is None:
        start_method = ('forkserver' if 'forkserver'
                        in mp.get_all_start_methods() else 'spawn')
    overrides = list(overrides)
    if data_root is not None:
        overrides.append(f'data_root={data_root}')
    cfg = task_config('cls', overrides)
    parts = build_task_parts(cfg)
    # The same batches for both settings, built once, here.
    batches = next_batches(parts.loader, warmup + steps)
    global_batch = len(batches[0]['data_samples'])
    if global_batch % 2:
        raise ValueError(f'the global batch ({global_batch}) must be even '
                         'to split between 2 processes')
    clip = cfg.optim_wrapper.get('clip_grad') or {}
    spec = _Spec(model=parts.model, batches=batches,
                 optimizer=dict(cfg.optim_wrapper.optimizer),
                 max_norm=clip.get('max_norm'), warmup=warmup,
                 timeout_s=timeout_s, hook=worker_hook,
                 ddp_kwargs=dict(cpu_ddp_wrapper_args(cfg)
                                 if ddp_kwargs is None else ddp_kwargs))
    # 'apart': 2 processes, each its half of every batch, no process group.
    times: Dict[Any, List[float]] = {1: [], 2: [], 'apart': []}
    phases: Dict[int, Dict[str, List[float]]] = {1: {}, 2: {}}
    for _ in range(rounds):
        for world_size in (1, 2):
            times[world_size] += run_world(world_size, spec, timeout_s,
                                           start_method, phases[world_size])
        times['apart'] += run_world(2, spec, timeout_s, start_method,
                                    communicate=False)
    rates = {ws: global_batch / median(t) for ws, t in times.items()}
    out = {'ddp/1proc/samples_per_s': rates[1],
           'ddp/2proc/samples_per_s': rates[2],
           'ddp_scaling': rates[2] / rates[1],
           # The machine's own ceiling for this work: two processes that
           # never communicate, over one.
           'ddp/no_comm_scaling': rates['apart'] / rates[1]}
    # Where a step's time goes (medians, ms): what halves with the
    # per-rank batch, what does not, and the all-reduce on its own.
    for world_size in (1, 2):
        for name in PHASES:
            out[f'ddp/{world_size}proc/ms/{name}'] = 1000 * median(
                phases[world_size].get(name, []))
    out['ddp/allreduce_ms'] = 1000 * median(phases[2].get('allreduce', []))
    return out
