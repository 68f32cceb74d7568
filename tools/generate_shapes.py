"""Generate a shapes benchmark ahead of training.

Training generates it on first use anyway; this is for doing it once, e.g.
before a multi-node job or on a shared file system::

    python tools/generate_shapes.py
    python tools/generate_shapes.py --data-root data/shapes --seed 1 \\
        --image-size 96 --train-quads 20000
    # the grounding (text-conditioned detection) benchmark
    python tools/generate_shapes.py --task det
    # the referring-segmentation splits
    python tools/generate_shapes.py --task seg

The folder is ``DATA_ROOT/<task>-<hash of the settings>`` (``cls-...`` for
classification, ``det-...`` for grounding, ``seg-...`` for referring
segmentation); a config using the same
settings finds it. Unset settings take the task's defaults.
"""
import argparse
import os
import sys
import time

# Run from a checkout without installing the package (as tools/train.py).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmfusion.datasets.shapes import GENERATORS  # noqa: E402
from mmfusion.datasets.shapes import ensure_shapes_dataset  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options: the task, and one per generator setting."""
    parser = argparse.ArgumentParser(
        description='Generate a shapes benchmark: yes/no classification '
        '(--task cls), phrase grounding (--task det) or referring '
        'segmentation (--task seg).')
    parser.add_argument('--task', choices=sorted(GENERATORS), default='cls',
                        help='which benchmark (default: %(default)s)')
    parser.add_argument('--data-root', default='data/shapes',
                        help='parent folder (default: %(default)s)')
    names = {n for cls in GENERATORS.values() for n in cls().settings()}
    for name in sorted(names):
        defaults = {task: cls().settings().get(name)
                    for task, cls in GENERATORS.items()}
        parser.add_argument(
            f'--{name.replace("_", "-")}', type=int, default=None,
            help='(default: ' + ', '.join(f'{v} for {t}' for t, v in
                                          sorted(defaults.items())) + ')')
    parser.add_argument('--no-progress', action='store_true',
                        help='hide the progress bar')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    settings = {name: getattr(args, name)
                for name in GENERATORS[args.task]().settings()
                if getattr(args, name) is not None}
    start = time.perf_counter()
    folder = ensure_shapes_dataset(args.data_root,
                                   progress=not args.no_progress,
                                   task=args.task, **settings)
    print(f'{folder} ({time.perf_counter() - start:.1f} s)')


if __name__ == '__main__':
    main()
