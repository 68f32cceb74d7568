"""Convert a YOLO segmentation dataset to referring segmentation.

::

    python tools/dataset_converters/yolo_to_refseg.py \
        ../shared/data/coco128-seg data/coco128_refseg/train.jsonl

IN is the dataset root in the YOLO layout: ``images/[SPLIT/]*.jpg``,
``labels/[SPLIT/]*.txt`` (one instance a line: ``class x1 y1 x2 y2 x3 y3
...``, a polygon normalised to [0, 1]) and the class names
(``classes.txt``, line N = class N, or ``data.yaml``'s ``names``, or
``--classes FILE``). One line per (image, class present):
``{"image", "text": class name, "mask"}``, the mask the union of that
class's polygons. Masks go to ``masks/<OUT stem>/`` beside OUT; paths are
relative to OUT's folder and images are not copied. The logic lives in
``mmfusion.datasets.converters.yolo_to_refseg``.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from mmfusion.datasets.converters import yolo_to_refseg  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='YOLO polygon labels + class names -> referring '
        'segmentation jsonl + mask PNGs (class names as phrases).')
    parser.add_argument('input', metavar='IN', help='YOLO dataset root')
    parser.add_argument('output', metavar='OUT', help='jsonl file to write')
    parser.add_argument('--classes', default=None,
                        help='class names file (default: IN/classes.txt or '
                        'IN/data.yaml)')
    parser.add_argument('--split', default=None,
                        help='only images/SPLIT and labels/SPLIT (default: '
                        'every image under images/)')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        stats = yolo_to_refseg(args.input, args.output, args.classes,
                               args.split)
    except (FileNotFoundError, ValueError) as exc:
        sys.exit(f'error: {exc}')
    print(f'{args.output}: {json.dumps(stats)}')


if __name__ == '__main__':
    main()
