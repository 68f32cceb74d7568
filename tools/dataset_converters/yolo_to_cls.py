"""Convert a YOLO dataset (images + labels + class names) to yes/no
questions for image+text classification.

::

    python tools/dataset_converters/yolo_to_cls.py \
        ../shared/data/coco128-seg data/coco128_cls

For each image, "is there a {name} in the image?" (with "an" before a
vowel) for up to
``--positives-per-image`` classes it shows (``yes``) and as many it does not
show (``no``), chosen so every question text gets both answers about
equally often. ``--template`` changes the question. Images are split into
train/val/test by ``--val-fraction``/``--test-fraction`` with ``--seed``.
OUT gets ``classes.txt`` (``no``, ``yes``) and ``<split>.jsonl``; nothing is
copied. Train on it with ``configs/experiment/cls_custom.yaml``
(``data_root=OUT``). The logic lives in
``mmfusion.datasets.converters.yolo_to_cls``.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from mmfusion.datasets.converters import yolo_to_cls  # noqa: E402
from mmfusion.datasets.converters.yolo_to_cls import \
    DEFAULT_TEMPLATE  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='YOLO labels + class names -> "is there a X?" yes/no '
        'classification jsonl.')
    parser.add_argument('input', metavar='IN', help='YOLO dataset root')
    parser.add_argument('output', metavar='OUT', help='output folder')
    parser.add_argument('--classes', default=None,
                        help='class names file (default: IN/classes.txt or '
                        'IN/data.yaml)')
    parser.add_argument('--split', default=None,
                        help='only images/SPLIT (default: every image)')
    parser.add_argument('--positives-per-image', type=int, default=2)
    parser.add_argument('--template', default=DEFAULT_TEMPLATE,
                        help=f'question with {{name}} and optionally {{a}} '
                        f'(its article a/an) (default: '
                        f'"{DEFAULT_TEMPLATE}")')
    parser.add_argument('--val-fraction', type=float, default=0.1)
    parser.add_argument('--test-fraction', type=float, default=0.1)
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        stats = yolo_to_cls(args.input, args.output, args.classes,
                            args.split, args.positives_per_image,
                            args.template, args.val_fraction,
                            args.test_fraction, args.seed)
    except (FileNotFoundError, ValueError) as exc:
        sys.exit(f'error: {exc}')
    print(f'{args.output}: {json.dumps(stats)}')


if __name__ == '__main__':
    main()
