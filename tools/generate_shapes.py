"""Generate the shapes classification benchmark ahead of training.

Training generates it on first use anyway; this is for doing it once, e.g.
before a multi-node job or on a shared file system::

    python tools/generate_shapes.py
    python tools/generate_shapes.py --data-root data/shapes --seed 1 \\
        --image-size 96 --train-quads 20000

The folder is ``DATA_ROOT/cls-<hash of the settings>``; a config using the
same settings finds it.
"""
import argparse
import os
import sys
import time

# Run from a checkout without installing the package (as tools/train.py).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmfusion.datasets.shapes import ShapesGenerator  # noqa: E402
from mmfusion.datasets.shapes import ensure_shapes_dataset  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options: one per :class:`ShapesGenerator` setting."""
    defaults = ShapesGenerator().settings()
    parser = argparse.ArgumentParser(
        description='Generate the shapes yes/no classification benchmark.')
    parser.add_argument('--data-root', default='data/shapes',
                        help='parent folder (default: %(default)s)')
    for name, value in defaults.items():
        parser.add_argument(f'--{name.replace("_", "-")}', type=int,
                            default=value, help='(default: %(default)s)')
    parser.add_argument('--no-progress', action='store_true',
                        help='hide the progress bar')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    settings = {name: getattr(args, name)
                for name in ShapesGenerator().settings()}
    start = time.perf_counter()
    folder = ensure_shapes_dataset(args.data_root,
                                   progress=not args.no_progress, **settings)
    print(f'{folder} ({time.perf_counter() - start:.1f} s)')


if __name__ == '__main__':
    main()
