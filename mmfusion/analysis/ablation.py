"""The ablation table: a sweep's jobs grouped over seeds, as markdown.

Usage (``tools/analysis/ablation_table.py`` is a thin wrapper)::

    python tools/analysis/ablation_table.py SUMMARY_JSON [SUMMARY_JSON ...]
        [--group-by KEY ...] [--ignore KEY ...] [--metric accuracy]
        [--out FILE.md]

Each ``SUMMARY_JSON`` is a sweep's ``summary.json`` (or the ``multirun``
folder holding it); several are merged, so blocks and unimodal baselines
swept separately land in one table. Jobs are grouped by every override
except ``randomness.seed`` (``--ignore`` adds keys to pool over), or by the
``--group-by`` keys only. One row per group, best first:

- ``option``: the group's overrides on the keys that differ between groups;
- ``seeds``: finished jobs in the group (failed ones are listed under the
  table and left out of every number);
- ``<metric>``: mean ± sample standard deviation (n - 1) over the group's
  jobs (the mean alone for one job);
- one column per ``<metric>/<type>`` key (accuracy per question type):
  the mean;
- ``params`` (trainable), ``FLOPs/sample`` (forward) and ``time/iter``
  (training), from each job's ``model_stats.json``, averaged.
"""
from __future__ import annotations

import argparse
import json
import math
import os.path as osp
import statistics
from typing import Dict, List, Optional, Sequence, Tuple

from .flops import format_count

SEED_KEY = 'randomness.seed'

Item = Tuple[str, str]  # (key, the override as written)


def override_items(row: Dict) -> List[Item]:
    """A job's overrides as ``(key, override)``: ``model/fusion=film`` ->
    ``('model/fusion', 'model/fusion=film')``; ``~key`` has key ``~key``."""
    overrides = row.get('override_list')
    if overrides is None:  # summaries written before override_list
        overrides = row.get('overrides', '').split()
    return [(o.split('=', 1)[0], o) for o in overrides]


def load_summaries(paths: Sequence[str]) -> List[Dict]:
    """The rows of every ``summary.json`` (a folder means its
    ``summary.json``), in order."""
    rows: List[Dict] = []
    for path in paths:
        if osp.isdir(path):
            path = osp.join(path, 'summary.json')
        with open(path) as f:
            data = json.load(f)
        if not isinstance(data, list):
            raise ValueError(f'{path}: expected a list of sweep jobs (a '
                             "sweep's summary.json)")
        rows.extend(data)
    return rows


def _mean(values: Sequence[float]) -> Optional[float]:
    return float(statistics.fmean(values)) if values else None


def _group_key(row: Dict, group_by: Optional[Sequence[str]],
               ignore: Sequence[str]) -> Tuple[Item, ...]:
    items = override_items(row)
    if group_by is not None:
        found = dict(items)
        return tuple((k, found[k]) for k in group_by if k in found)
    return tuple(sorted((k, o) for k, o in items if k not in ignore))


def _label(key: Tuple[Item, ...], varying: set, first: Dict) -> str:
    """The group's varying overrides, in the order the job wrote them."""
    mine = set(key)
    parts = [o for k, o in override_items(first)
             if k in varying and (k, o) in mine]
    return ' '.join(parts) or 'defaults'


def summarize_groups(rows: Sequence[Dict],
                     group_by: Optional[Sequence[str]] = None,
                     metric: str = 'accuracy',
                     ignore: Sequence[str] = (SEED_KEY,)) -> List[Dict]:
    """One dict per group, best ``metric`` mean first (groups without it
    last): ``option``, ``n``, ``mean``, ``std`` (None for n < 2),
    ``per_type`` ({type: mean}), ``params``, ``flops``, ``time_per_iter``
    (means, None when no job has them), ``failed`` (the failed jobs' rows).
    """
    groups: Dict[Tuple[Item, ...], List[Dict]] = {}
    for row in rows:
        groups.setdefault(_group_key(row, group_by, ignore), []).append(row)
    # Keys that tell groups apart: not set to one value in every group.
    all_items = [dict(k) for k in groups]
    keys = {k for items in all_items for k in items}
    varying = {k for k in keys
               if len({items.get(k) for items in all_items}) > 1}
    prefix = metric + '/'
    out = []
    for key, members in groups.items():
        ok = [r for r in members if r.get('status') == 'ok'
              and metric in r.get('metrics', {})]
        values = [float(r['metrics'][metric]) for r in ok]
        types = sorted({k[len(prefix):] for r in ok for k in r['metrics']
                        if k.startswith(prefix)})
        per_type = {t: _mean([r['metrics'][prefix + t] for r in ok
                              if prefix + t in r['metrics']]) for t in types}
        stats = {s: _mean([float(r['stats'][s]) for r in ok
                           if r.get('stats', {}).get(s) is not None])
                 for s in ('params', 'flops', 'time_per_iter')}
        out.append(dict(
            option=_label(key, varying, members[0]), n=len(values),
            mean=_mean(values),
            std=statistics.stdev(values) if len(values) > 1 else None,
            per_type=per_type, failed=[r for r in members if r not in ok],
            **stats))
    out.sort(key=lambda g: (g['mean'] is None,
                            -(g['mean'] if g['mean'] is not None else 0)))
    return out


def _fmt(value: Optional[float], digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return '-'
    return f'{value:.{digits}f}'


def ablation_table(rows: Sequence[Dict],
                   group_by: Optional[Sequence[str]] = None,
                   metric: str = 'accuracy',
                   ignore: Sequence[str] = (SEED_KEY,)) -> str:
    """The markdown table of :func:`summarize_groups`, then a list of the
    jobs that failed (if any)."""
    groups = summarize_groups(rows, group_by, metric, ignore)
    types = sorted({t for g in groups for t in g['per_type']})
    header = ['option', 'seeds', f'{metric} (mean ± std)', *types, 'params',
              'FLOPs/sample', 'time/iter']
    lines = ['| ' + ' | '.join(header) + ' |',
             '| ' + ' | '.join('---' for _ in header) + ' |']
    for g in groups:
        score = _fmt(g['mean'])
        if g['std'] is not None:
            score += ' ± ' + _fmt(g['std'])
        time = g['time_per_iter']
        cells = [f'`{g["option"]}`', str(g['n']), score,
                 *[_fmt(g['per_type'].get(t)) for t in types],
                 format_count(g['params']), format_count(g['flops']),
                 '-' if time is None else f'{time * 1000:.1f} ms']
        lines.append('| ' + ' | '.join(cells) + ' |')
    failed = [(g['option'], r) for g in groups for r in g['failed']]
    if failed:
        lines += ['', f'Not in the numbers ({len(failed)} jobs):']
        lines += [f'- `{r.get("overrides", "")}`: {r.get("status", "?")}'
                  f' ({r.get("work_dir", "")})' for _, r in failed]
    return '\n'.join(lines) + '\n'


def parse_args(argv: Optional[Sequence[str]] = None):
    parser = argparse.ArgumentParser(
        description='Markdown ablation table from sweep summaries: jobs '
        'grouped over seeds, mean ± std, per-type means, cost.',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__)
    parser.add_argument('summaries', nargs='+', metavar='SUMMARY_JSON',
                        help="a sweep's summary.json (or its multirun "
                        'folder); several are merged')
    parser.add_argument('--group-by', nargs='+', metavar='KEY',
                        help='group by these override keys only (e.g. '
                        'model/fusion); default: every key but the seed')
    parser.add_argument('--ignore', nargs='+', metavar='KEY',
                        default=[SEED_KEY],
                        help='keys to pool over (default: randomness.seed)')
    parser.add_argument('--metric', default='accuracy',
                        help='the metric to average and sort by')
    parser.add_argument('--out', help='also write the table to this file')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> str:
    args = parse_args(argv)
    try:
        rows = load_summaries(args.summaries)
    except (OSError, ValueError) as exc:  # json errors are ValueErrors
        raise SystemExit(f'error: {exc}') from None
    table = ablation_table(rows, args.group_by, args.metric, args.ignore)
    print(table, end='')
    if args.out:
        with open(args.out, 'w') as f:
            f.write(table)
    return table
