"""Convert a YOLO dataset (box or polygon labels) to ODVG grounding jsonl.

::

    python tools/dataset_converters/yolo_to_grounding.py \
        ../shared/data/coco128-seg data/coco128_grounding/train.jsonl

IN is the dataset root in the YOLO layout: ``images/[SPLIT/]*.jpg``,
``labels/[SPLIT/]*.txt`` (one object a line: ``class cx cy w h``, or
``class x1 y1 x2 y2 ...`` for a polygon, normalised to [0, 1]) and the class
names (``classes.txt``, line N = class N, or ``data.yaml``'s ``names``, or
``--classes FILE``). One line per image; every object is a region whose
phrase is its class name (a polygon's box is its extent), and the classes
absent from the image are its negatives (``--max-negatives N`` keeps N,
drawn with ``--seed``). An image without a label file has no objects. Image
paths are written relative to OUT's folder; nothing is copied. The logic
lives in ``mmfusion.datasets.converters.yolo_to_grounding``.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from mmfusion.datasets.converters import yolo_to_grounding  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='YOLO labels + class names -> ODVG grounding jsonl '
        '(class names as phrases, absent classes as negatives).')
    parser.add_argument('input', metavar='IN', help='YOLO dataset root')
    parser.add_argument('output', metavar='OUT', help='jsonl file to write')
    parser.add_argument('--classes', default=None,
                        help='class names file (default: IN/classes.txt or '
                        'IN/data.yaml)')
    parser.add_argument('--split', default=None,
                        help='only images/SPLIT and labels/SPLIT (default: '
                        'every image under images/)')
    parser.add_argument('--max-negatives', type=int, default=None,
                        help='negatives kept per image (default: every '
                        'absent class)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed for --max-negatives (default 0)')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        stats = yolo_to_grounding(args.input, args.output, args.classes,
                                  args.split, args.max_negatives, args.seed)
    except (FileNotFoundError, ValueError) as exc:
        sys.exit(f'error: {exc}')
    print(f'{args.output}: {json.dumps(stats)}')


if __name__ == '__main__':
    main()
