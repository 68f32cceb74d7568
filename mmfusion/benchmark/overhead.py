"""mmfusion's Runner against a minimal hand-written PyTorch loop.

For one task, :func:`measure_task` times steady-state training iterations
three ways, in one process so that machine noise largely cancels:

- ``hand``: :func:`hand_loop`, the loop a user writes by hand (below),
  with the same model, DataLoader (sampler, batch size, workers, collate),
  optimiser, gradient clipping and thread count, and no logging;
- ``runner``: mmfusion's Runner built from the same config (every default
  hook: timer, logger, checkpoint, tokenizer, run info, non-finite loss,
  the resumable data position...), validation and testing switched off;
- the data loader alone and the training step alone on pre-fetched
  batches, which give ``data/samples_per_s`` and ``model/samples_per_s``.

The hand loop and the Runner take turns (``rounds`` times each) and each
figure is the median over all its rounds' iterations, so a drift in machine
speed during the measurement does not bias the ratio.
``data/wait_fraction`` is mmengine's own ``data_time`` over ``time``
(:class:`~mmengine.hooks.IterTimerHook`) summed over the timed iterations
of the Runner.
"""
from __future__ import annotations

import copy
import tempfile
import time
from typing import Dict, List, Optional, Sequence

from mmengine.config import Config
from mmengine.hooks import Hook

from mmfusion.utils.setup_env import set_torch_threads

from .common import (build_optimizer, build_task_parts, median, next_batches,
                     task_config, train_step_fn)


def hand_loop(parts, iters: int, warmup: int) -> List[float]:
    """Seconds of each of ``iters`` iterations after ``warmup``: the loop
    of ``docs/benchmarks.md``. An iteration runs from the end of the
    previous step to the end of this one, so data loading is inside."""
    model, loader, cfg = parts.model, parts.loader, parts.cfg
    optimizer = build_optimizer(model, cfg)
    clip = (cfg.optim_wrapper.get('clip_grad') or {}).get('max_norm')
    step = train_step_fn(model, optimizer, clip)
    times: List[float] = []
    done = 0
    last = time.perf_counter()
    while done < warmup + iters:
        for data_batch in loader:
            step(data_batch)
            now = time.perf_counter()
            if done >= warmup:
                times.append(now - last)
            last = now
            done += 1
            if done == warmup + iters:
                break
    return times


class IterTimesHook(Hook):
    """Records, for every training iteration after ``warmup``, its wall time
    (end of the previous iteration to the end of this one) and mmengine's
    ``data_time``/``time`` for it."""

    priority = 'LOWEST'  # after IterTimerHook has updated the message hub

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.wall: List[float] = []
        self.data_time: List[float] = []
        self.time: List[float] = []
        self._last: Optional[float] = None

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        now = time.perf_counter()
        if self._last is not None and runner.iter >= self.warmup:
            self.wall.append(now - self._last)
            hub = runner.message_hub
            self.data_time.append(hub.get_scalar('train/data_time').current())
            self.time.append(hub.get_scalar('train/time').current())
        self._last = now


def runner_config(cfg: Config, iters: int, work_dir: str) -> Config:
    """``cfg`` for a timing run: ``iters`` iterations, no validation, no
    test after training, no checkpoint before the end."""
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = work_dir
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters + 1
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.test_after_train = False
    # No hook table and start-up report in the benchmark's output.
    cfg.log_level = 'WARNING'
    checkpoint = cfg.default_hooks.get('checkpoint')
    if checkpoint:
        checkpoint.interval = iters + 1
        checkpoint.save_last = False
        checkpoint.pop('save_best', None)
    # Schedulers whose end interpolates max_iters were resolved already:
    # they just end later than the run, which changes nothing per step.
    return cfg


def runner_loop(cfg: Config, iters: int, warmup: int
                ) -> IterTimesHook:
    """Train ``warmup + iters`` iterations with mmfusion's Runner."""
    from mmfusion.engine.runner import build_runner
    with tempfile.TemporaryDirectory(prefix='mmfusion-bench-') as work_dir:
        run_cfg = runner_config(cfg, warmup + iters, work_dir)
        runner = build_runner(run_cfg)
        hook = IterTimesHook(warmup)
        runner.register_hook(hook)
        runner.train()
        # Release the loader's workers before the directory goes.
        del runner
    return hook


def loader_rate(loader, batches: int) -> float:
    """Samples per second of iterating ``loader`` alone (after one batch,
    so worker start-up is not counted)."""
    it = iter(loader)
    next(it)
    start = time.perf_counter()
    samples = 0
    for _ in range(batches):
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            batch = next(it)
        samples += len(batch['data_samples'])
    return samples / (time.perf_counter() - start)


def model_rate(parts, batches: Sequence[dict], repeats: int) -> float:
    """Samples per second of the training step alone, on batches already
    in memory (no data loading)."""
    optimizer = build_optimizer(parts.model, parts.cfg)
    clip = (parts.cfg.optim_wrapper.get('clip_grad') or {}).get('max_norm')
    step = train_step_fn(parts.model, optimizer, clip)
    step(batches[0])  # warm-up
    times = []
    for r in range(repeats):
        batch = batches[r % len(batches)]
        start = time.perf_counter()
        step(batch)
        times.append(time.perf_counter() - start)
    return len(batches[0]['data_samples']) / median(times)


def measure_task(task: str, iters: int = 100, warmup: int = 20,
                 overrides: Sequence[str] = (), flops: bool = False,
                 rounds: int = 2) -> Dict[str, float]:
    """``overhead/<task>``, ``data/wait_fraction/<task>``,
    ``data/samples_per_s/<task>``, ``model/samples_per_s/<task>`` and the
    underlying per-iteration times (``time/<task>/hand_s``,
    ``time/<task>/runner_s``); with ``flops``, also the counted FLOPs of
    one training step (``flops/<task>/train_step``)."""
    cfg = task_config(task, overrides)
    # The hand loop runs at the thread count the Runner sets up.
    set_torch_threads(cfg.env_cfg)
    # Hand, Runner, hand, Runner: this machine's speed drifts by 10-20 %
    # over a minute (a shared host), so each figure pools two rounds
    # that bracket the other's.
    parts = build_task_parts(cfg)
    hand: List[float] = []
    runner: List[float] = []
    data_time = step_time = 0.0
    for _ in range(rounds):
        hand += hand_loop(parts, iters, warmup)
        hook = runner_loop(cfg, iters, warmup)
        runner += hook.wall
        data_time += sum(hook.data_time)
        step_time += sum(hook.time)
    hand_s, runner_s = median(hand), median(runner)
    batches = next_batches(parts.loader, min(8, iters))
    out = {
        f'overhead/{task}': runner_s / hand_s,
        f'data/wait_fraction/{task}': data_time / max(step_time, 1e-12),
        f'data/samples_per_s/{task}': loader_rate(parts.loader, iters),
        f'model/samples_per_s/{task}': model_rate(parts, batches,
                                                  max(5, iters // 4)),
        f'time/{task}/hand_s': hand_s,
        f'time/{task}/runner_s': runner_s,
    }
    if flops:
        from .roofline import train_step_flops
        optimizer = build_optimizer(parts.model, parts.cfg)
        step = train_step_fn(parts.model, optimizer)
        out[f'flops/{task}/train_step'] = float(
            train_step_flops(step, batches[0]))
    return out


def run_overhead(tasks: Sequence[str] = ('cls', 'det', 'seg'),
                 iters: int = 100, warmup: int = 20,
                 overrides_by_task: Optional[Dict[str, Sequence[str]]] = None,
                 flops: bool = False, rounds: int = 2) -> Dict[str, float]:
    """:func:`measure_task` for each task."""
    out: Dict[str, float] = {}
    for task in tasks:
        overrides = (overrides_by_task or {}).get(task, ())
        out.update(measure_task(task, iters, warmup, overrides, flops,
                                rounds))
    return out
