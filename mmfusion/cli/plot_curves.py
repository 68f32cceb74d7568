"""Plot training curves of one or several runs from mmengine's logs.

::

    python tools/analysis/plot_curves.py work_dirs/cls_shapes --out curves.png
    # a whole sweep, every job on one plot, with per-type accuracies
    python tools/analysis/plot_curves.py work_dirs/cls_shapes/multirun \
        --keys loss accuracy 'accuracy/*' --out sweep.png

Reads ``WORK_DIR/<timestamp>/vis_data/scalars.json`` (see
:mod:`mmfusion.analysis.curves`); one panel per key, one line per run.
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional, Sequence


def parse_args(argv: Sequence[str]):
    parser = argparse.ArgumentParser(
        description='Plot curves (loss, metrics) of one or several runs from '
        "mmengine's json logs, several runs on one plot.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument('work_dirs', nargs='+', metavar='WORK_DIR',
                        help='work dirs, or a sweep folder (its multirun '
                        'jobs)')
    parser.add_argument('--keys', nargs='+', default=None,
                        help='logged keys to plot, globs allowed '
                        "('accuracy/*'); default: loss accuracy")
    parser.add_argument('--out', default='curves.png',
                        help='picture to write (default: %(default)s)')
    parser.add_argument('--title', default=None)
    parser.add_argument('--log-y', nargs='*', default=[], metavar='KEY',
                        help='keys drawn on a log scale (e.g. loss lr)')
    parser.add_argument('--list', action='store_true',
                        help='print the keys each run logged and exit')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from mmfusion.analysis import curves as C
    try:
        if args.list:
            for run in C.expand_runs(args.work_dirs):
                keys = C.available_keys(C.load_records(run))
                print(f'{run}: {", ".join(keys)}')
            return
        data = C.collect_curves(args.work_dirs, args.keys)
    except (FileNotFoundError, KeyError) as exc:
        print(f'error: {exc.args[0] if exc.args else exc}', file=sys.stderr)
        sys.exit(2)
    out = C.plot_curves(data, args.out, title=args.title,
                        log_y=args.log_y)
    runs = sorted({r for c in data.values() for r in c})
    print(f'{out}: {", ".join(data)} for {len(runs)} run(s): '
          f'{", ".join(runs)}')


if __name__ == '__main__':
    main()
