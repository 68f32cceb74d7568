"""Hydra-style multirun: every combination of the sweep overrides, one
process per job (mmengine's logger, message hub and visualiser are
process-wide singletons), one after another, then a summary."""
from __future__ import annotations

import csv
import itertools
import json
import os
import os.path as osp
import re
import subprocess
import sys
from typing import Dict, List, Sequence, Tuple

from mmfusion.analysis.model_stats import STATS_KEYS, read_model_stats
from mmfusion.config import experiment_name, parse_overrides, \
    resolve_config_path


def expand_sweep(overrides: Sequence[str]) -> Tuple[List[List[str]],
                                                    List[str]]:
    """(one override list per job, the keys that vary), in Hydra's order
    (the cartesian product, last override fastest)."""
    axes: List[List[str]] = []
    varying: List[str] = []
    for ov in parse_overrides(overrides):
        if ov.is_sweep_override():
            key = ov.get_key_element()
            axes.append([f'{key}={v}' for v in ov.sweep_string_iterator()])
            varying.append(key)
        else:
            axes.append([ov.input_line])
    return [list(job) for job in itertools.product(*axes)], varying


def job_dir_name(index: int, job: Sequence[str], varying: Sequence[str]
                 ) -> str:
    """``<n>_<overrides>`` with only the varying overrides, path-safe."""
    parts = [o for o in job
             if o.split('=', 1)[0] in varying] or list(job) or ['default']
    text = ','.join(parts).replace('/', '.')
    return f'{index}_' + re.sub(r'[^A-Za-z0-9_.,=+~@-]', '_', text)[:150]


def _flatten(metrics: Dict) -> Dict[str, float]:
    return {k: float(v) for k, v in sorted(metrics.items())}


def _job_env() -> Dict[str, str]:
    """The jobs import the same mmfusion as this process, installed or not."""
    import mmfusion
    pkg_parent = osp.dirname(osp.dirname(osp.abspath(mmfusion.__file__)))
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (pkg_parent, env.get('PYTHONPATH')) if p)
    return env


def run_sweep(args) -> List[Dict]:
    """Run every job of ``args.overrides``'s sweep; write the summary."""
    config_path = resolve_config_path(args.config)
    jobs, varying = expand_sweep(args.overrides)
    root = osp.abspath(args.work_dir or osp.join(
        'work_dirs', experiment_name(config_path)))
    multirun = osp.join(root, 'multirun')
    os.makedirs(multirun, exist_ok=True)
    passthrough = []
    if args.amp:
        passthrough.append('--amp')
    if args.auto_scale_lr:
        passthrough.append('--auto-scale-lr')
    if getattr(args, 'unsafe_load', False):
        passthrough.append('--unsafe-load')
    rows = []
    from mmfusion.utils.progress import progress_bar
    bar = progress_bar(total=len(jobs), desc='sweep', unit='job')
    for i, job in enumerate(jobs):
        job_dir = osp.join(multirun, job_dir_name(i, job, varying))
        cmd = [sys.executable, '-m', 'mmfusion.cli.train', str(config_path),
               *job, '--work-dir', job_dir, *passthrough]
        bar.write(f'[sweep {i + 1}/{len(jobs)}] '
                  f'{" ".join(job) or "(defaults)"} -> {job_dir}')
        sys.stdout.flush()
        os.makedirs(job_dir, exist_ok=True)
        with open(osp.join(job_dir, 'sweep_job.log'), 'w') as log:
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT,
                                  env=_job_env())
        metrics_file = osp.join(job_dir, 'test_metrics.json')
        row = {'job': i, 'overrides': ' '.join(job),
               'override_list': list(job), 'work_dir': job_dir,
               'status': 'ok' if proc.returncode == 0 else
               f'failed (exit {proc.returncode}, see sweep_job.log)'}
        if proc.returncode == 0 and osp.isfile(metrics_file):
            with open(metrics_file) as f:
                row['metrics'] = _flatten(json.load(f))
        else:
            row['metrics'] = {}
        # params, flops (per sample), time_per_iter: model_stats.json.
        row['stats'] = (read_model_stats(job_dir)
                        if proc.returncode == 0 else {})
        rows.append(row)
        bar.write(f'[sweep {i + 1}/{len(jobs)}] {row["status"]} '
                  f'{row["metrics"]}')
        sys.stdout.flush()
        bar.update(1)
    bar.close()
    write_summary(rows, multirun)
    print(format_table(rows))
    return rows


def write_summary(rows: List[Dict], folder: str) -> None:
    """``summary.json`` (the rows) and ``summary.csv``: job, overrides,
    status, every test metric, the model stats (``params``, ``flops`` per
    sample, ``time_per_iter`` in seconds), work dir."""
    keys = sorted({k for r in rows for k in r['metrics']})
    with open(osp.join(folder, 'summary.json'), 'w') as f:
        json.dump(rows, f, indent=2)
    with open(osp.join(folder, 'summary.csv'), 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['job', 'overrides', 'status', *keys, *STATS_KEYS,
                         'work_dir'])
        for r in rows:
            stats = r.get('stats', {})
            writer.writerow([r['job'], r['overrides'], r['status'],
                             *[r['metrics'].get(k, '') for k in keys],
                             *[stats.get(k, '') for k in STATS_KEYS],
                             r['work_dir']])


def format_table(rows: List[Dict]) -> str:
    keys = [k for k in ('accuracy', 'f1_macro', 'auroc', 'coco/bbox_mAP',
                        'mIoU', 'IoU/referred')
            if any(k in r['metrics'] for r in rows)]
    header = ['job', 'overrides', *keys, 'params', 'FLOPs/sample',
              's/iter', 'status']
    body = [[str(r['job']), r['overrides'],
             *[f'{r["metrics"][k]:.4f}' if k in r['metrics'] else '-'
               for k in keys], *_stats_cells(r.get('stats', {})),
             r['status']] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(header, *body)]
    line = lambda cells: ' | '.join(c.ljust(w) for c, w in zip(cells, widths))
    return '\n'.join([line(header), '-+-'.join('-' * w for w in widths),
                      *map(line, body)])


def _stats_cells(stats: Dict) -> List[str]:
    from mmfusion.analysis.flops import format_count
    time = stats.get('time_per_iter')
    return [format_count(stats.get('params')),
            format_count(stats.get('flops')),
            '-' if time is None else f'{time:.3f}']
