"""Cost of a trained model: parameters, FLOPs per sample, time per iteration.

``tools/train.py`` writes them to ``WORK_DIR/model_stats.json`` after
training (and testing); a sweep's ``summary.csv``/``summary.json`` gather
them per job, and ``tools/analysis/ablation_table.py`` tabulates them.
"""
from __future__ import annotations

import json
import os.path as osp
import statistics
import warnings
from typing import Any, Dict, Optional, Sequence

from torch import nn

#: The keys a sweep's summary takes from ``model_stats.json``.
STATS_KEYS = ('params', 'flops', 'time_per_iter')


def trainable_params(model: nn.Module) -> int:
    """Number of trainable (``requires_grad``) parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def steady_time_per_iter(times: Sequence[float],
                         warmup_fraction: float = 0.1) -> Optional[float]:
    """Median of per-iteration times after the first ``warmup_fraction``.

    The median, not the mean: the iteration after a validation or a
    checkpoint save is charged with it by mmengine's ``IterTimerHook``.
    None without any time.
    """
    times = [float(t) for t in times]
    if not times:
        return None
    return float(statistics.median(times[int(len(times) *
                                             warmup_fraction):]))


def _unwrap(model: nn.Module) -> nn.Module:
    from mmengine.model import is_model_wrapper
    return model.module if is_model_wrapper(model) else model


def _one_batch(runner) -> Optional[tuple]:
    """(split, batch) from the validation loader, else the test loader."""
    for split in ('val', 'test'):
        try:
            loop = getattr(runner, f'{split}_loop')
        except Exception:  # no such loop configured
            loop = None
        if loop is None:
            continue
        for batch in loop.dataloader:
            return split, batch
    return None


def collect_model_stats(runner) -> Dict[str, Any]:
    """``params``, ``flops`` (forward, per sample, on one validation batch,
    see :func:`mmfusion.analysis.flops.model_flops` for what is counted)
    and ``time_per_iter`` (seconds, :func:`steady_time_per_iter` of the
    message hub's ``train/time``, logged by ``IterTimerHook``), plus
    ``flops_split``, ``flops_batch_size`` and ``flops_per_module``. A value
    that cannot be measured is None (with a warning), never an error.
    """
    from mmfusion.analysis.flops import model_flops
    model = _unwrap(runner.model)
    stats: Dict[str, Any] = dict(params=trainable_params(model), flops=None,
                                 time_per_iter=None)
    try:
        found = _one_batch(runner)
        if found is None:
            warnings.warn('model stats: no val/test dataloader, no FLOPs')
        else:
            split, batch = found
            counted = model_flops(model, batch)
            stats.update(flops=counted['per_sample'], flops_split=split,
                         flops_batch_size=counted['batch_size'],
                         flops_per_module=counted['per_module'])
    except Exception as exc:  # a model the counter cannot run
        warnings.warn(f'model stats: FLOPs not counted ({exc!r})')
    try:
        buffer = runner.message_hub.get_scalar('train/time')
        stats['time_per_iter'] = steady_time_per_iter(
            buffer.data[0].tolist())
    except KeyError:
        warnings.warn('model stats: no train/time logged (IterTimerHook)')
    return stats


def write_model_stats(runner, path: Optional[str] = None) -> Dict[str, Any]:
    """:func:`collect_model_stats` into ``path`` (default
    ``WORK_DIR/model_stats.json``); returns the stats."""
    stats = collect_model_stats(runner)
    path = path or osp.join(runner.work_dir, 'model_stats.json')
    with open(path, 'w') as f:
        json.dump(stats, f, indent=2, sort_keys=True)
    return stats


def read_model_stats(work_dir: str) -> Dict[str, Any]:
    """The :data:`STATS_KEYS` of ``WORK_DIR/model_stats.json`` ({} when
    the file is absent)."""
    path = osp.join(work_dir, 'model_stats.json')
    if not osp.isfile(path):
        return {}
    with open(path) as f:
        stats = json.load(f)
    return {k: stats[k] for k in STATS_KEYS if stats.get(k) is not None}
