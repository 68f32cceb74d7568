"""Training curves from mmengine's scalar logs, several runs on one plot.

Every run's ``WORK_DIR/<timestamp>/vis_data/scalars.json`` (one JSON object
a line, written by ``LocalVisBackend``: training lines every
``default_hooks.logger.interval`` iterations with ``loss``, ``lr``, ...,
and validation lines with the metrics) is read, the timestamps in order
(a resumed run continues in a new one). A sweep's folder (with
``multirun/<job>/`` inside) stands for all its jobs.
"""
from __future__ import annotations

import fnmatch
import json
import os
import os.path as osp
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

#: Keys that are bookkeeping, not curves.
NON_CURVE_KEYS = ('step', 'iter', 'epoch', 'time', 'data_time', 'memory',
                  'eta')
DEFAULT_KEYS = ('loss', 'accuracy')

Curve = List[Tuple[float, float]]


def scalar_files(work_dir: str) -> List[Path]:
    """The run's ``scalars.json`` files, oldest first."""
    root = Path(work_dir)
    if root.is_file():
        return [root]
    files = sorted(root.glob('*/vis_data/scalars.json'))
    if not files and (root / 'vis_data' / 'scalars.json').is_file():
        files = [root / 'vis_data' / 'scalars.json']  # a timestamp folder
    return files


def expand_runs(work_dirs: Sequence[str]) -> List[str]:
    """Work dirs, a sweep's (``multirun/*``) expanded into its jobs."""
    runs: List[str] = []
    for wd in work_dirs:
        if scalar_files(wd):
            runs.append(wd)
            continue
        for parent in (Path(wd) / 'multirun', Path(wd)):
            jobs = [str(p) for p in sorted(parent.iterdir())
                    if p.is_dir() and scalar_files(str(p))] \
                if parent.is_dir() else []
            if jobs:
                runs.extend(jobs)
                break
        else:
            raise FileNotFoundError(
                f'no mmengine scalar logs under `{wd}` (looked for '
                '<timestamp>/vis_data/scalars.json, and for sweep jobs in '
                f'{wd}/multirun/)')
    return runs


def load_records(work_dir: str) -> List[Dict]:
    """Every logged record of a run, each with ``_x``: its iteration.

    Validation records logged before ``log_metric_by_epoch: false`` carry
    step 0 in iteration-based runs; they get the iteration of the training
    record before them.
    """
    records: List[Dict] = []
    for path in scalar_files(work_dir):
        last_train = 0.0
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by a killed run
                if not isinstance(rec, dict):
                    continue
                step = float(rec.get('step', rec.get('iter', 0)) or 0)
                is_train = 'iter' in rec or 'lr' in rec or 'epoch' in rec
                if is_train:
                    last_train = step
                elif step == 0 and last_train:
                    step = last_train
                rec['_x'] = step
                records.append(rec)
    return records


def available_keys(records: Sequence[Dict]) -> List[str]:
    keys = set()
    for rec in records:
        for k, v in rec.items():
            if (not k.startswith('_') and k not in NON_CURVE_KEYS
                    and isinstance(v, (int, float))
                    and not isinstance(v, bool)):
                keys.add(k)
    return sorted(keys)


def match_keys(patterns: Sequence[str], keys: Sequence[str]) -> List[str]:
    """Keys matching the patterns (exact names or globs, ``accuracy/*``),
    in the patterns' order."""
    out: List[str] = []
    for pat in patterns:
        for k in (fnmatch.filter(keys, pat) if any(c in pat for c in '*?[')
                  else [pat] if pat in keys else []):
            if k not in out:
                out.append(k)
    return out


def curve(records: Sequence[Dict], key: str) -> Curve:
    """``(iteration, value)`` points of ``key``, sorted; a step logged twice
    (resumed runs) keeps its last value."""
    points: Dict[float, float] = {}
    for rec in records:
        v = rec.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            points[rec['_x']] = float(v)
    return sorted(points.items())


def run_label(work_dir: str, runs: Sequence[str]) -> str:
    """A short name: the folder's name, or its path relative to the runs'
    common parent when names repeat."""
    name = osp.basename(osp.normpath(work_dir))
    names = [osp.basename(osp.normpath(r)) for r in runs]
    if names.count(name) > 1:
        common = osp.commonpath([osp.abspath(r) for r in runs])
        return osp.relpath(osp.abspath(work_dir), common)
    return name


def collect_curves(work_dirs: Sequence[str],
                   keys: Optional[Sequence[str]] = None
                   ) -> Dict[str, Dict[str, Curve]]:
    """``{key: {run label: points}}`` for every key any run has.

    ``keys`` (names or globs) default to ``loss`` and ``accuracy``, those
    the runs have; keys no run logged are left out (an error if none is
    left).
    """
    runs = expand_runs(work_dirs)
    records = {r: load_records(r) for r in runs}
    all_keys = sorted({k for recs in records.values()
                       for k in available_keys(recs)})
    wanted = match_keys(keys or DEFAULT_KEYS, all_keys)
    if not wanted:
        raise KeyError(f'none of the keys {list(keys or DEFAULT_KEYS)} is in '
                       f'the logs; logged keys: {", ".join(all_keys)}')
    out: Dict[str, Dict[str, Curve]] = {}
    for key in wanted:
        out[key] = {}
        for r in runs:
            pts = curve(records[r], key)
            if pts:
                out[key][run_label(r, runs)] = pts
    return out


def plot_curves(curves: Dict[str, Dict[str, Curve]], out_file: str,
                title: Optional[str] = None, log_y: Sequence[str] = ()
                ) -> str:
    """One panel per key, one line per run; written to ``out_file``."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    n = len(curves)
    cols = min(n, 2)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(6.4 * cols, 4.0 * rows),
                             squeeze=False)
    for ax, (key, runs) in zip(axes.flat, curves.items()):
        for label, pts in runs.items():
            xs, ys = zip(*pts)
            ax.plot(xs, ys, marker='o' if len(pts) <= 12 else None,
                    markersize=3, linewidth=1.4, label=label)
        ax.set_title(key)
        ax.set_xlabel('iteration')
        ax.grid(alpha=0.3)
        if key in log_y:
            ax.set_yscale('log')
        if runs:
            ax.legend(fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    fig.savefig(out_file, dpi=100)
    plt.close(fig)
    return out_file
