"""Convert a CSV/TSV table of (image, text, label) rows to mmfusion's
classification format.

::

    python tools/dataset_converters/csv_to_cls.py my_data/labels.csv \
        data/my_cls --image-col file --text-col caption --label-col category
    python tools/dataset_converters/csv_to_cls.py labels.tsv data/my_cls \
        --delimiter tab --split-col split --label-sep '|'

Image paths in the table are relative to ``--image-root`` (default: the
table's folder). Splits come from ``--split-col`` (train/val/test) or are
drawn by image (``--val-fraction``, ``--test-fraction``, ``--seed``). OUT
gets ``classes.txt`` and ``<split>.jsonl`` (image paths relative to OUT;
nothing is copied). Train on it with ``configs/experiment/cls_custom.yaml``
(``data_root=OUT``). The logic lives in
``mmfusion.datasets.converters.csv_to_cls``.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from mmfusion.datasets.converters import csv_to_cls  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='CSV/TSV (image, text, label columns) -> mmfusion '
        'classification jsonl.')
    parser.add_argument('input', metavar='IN', help='CSV or TSV file')
    parser.add_argument('output', metavar='OUT', help='output folder')
    parser.add_argument('--image-col', default='image',
                        help='image path column (default: image)')
    parser.add_argument('--text-col', default='text',
                        help='text column (default: text; "" for none)')
    parser.add_argument('--label-col', default='label',
                        help='label column (default: label)')
    parser.add_argument('--delimiter', default=',',
                        help='field separator (default ","; "tab" for TSV)')
    parser.add_argument('--no-header', action='store_true',
                        help='no header row: columns are 0-based numbers')
    parser.add_argument('--image-root', default=None,
                        help='folder the image paths are relative to '
                        "(default: the table's folder)")
    parser.add_argument('--split-col', default=None,
                        help='column of split names (train/val/test)')
    parser.add_argument('--val-fraction', type=float, default=0.1)
    parser.add_argument('--test-fraction', type=float, default=0.1)
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the split by image (default 0)')
    parser.add_argument('--label-sep', default=None,
                        help='multi-label: separator of the labels in a '
                        'cell, e.g. "|"')
    parser.add_argument('--classes', default=None,
                        help='class names file (one a line) fixing their '
                        'order (default: sorted labels)')
    parser.add_argument('--skip-missing', action='store_true',
                        help='leave out rows whose image is missing')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    classes = None
    try:
        if args.classes:
            with open(args.classes, encoding='utf-8') as f:
                classes = [line.strip() for line in f if line.strip()]
        stats = csv_to_cls(
            args.input, args.output, image_col=args.image_col,
            text_col=args.text_col or None, label_col=args.label_col,
            delimiter=args.delimiter, image_root=args.image_root,
            split_col=args.split_col, val_fraction=args.val_fraction,
            test_fraction=args.test_fraction, seed=args.seed,
            label_sep=args.label_sep, classes=classes,
            header=not args.no_header, skip_missing=args.skip_missing)
    except (FileNotFoundError, ValueError) as exc:
        sys.exit(f'error: {exc}')
    print(f'{args.output}: {json.dumps(stats)}')


if __name__ == '__main__':
    main()
