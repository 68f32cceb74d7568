"""Convert COCO instances annotations to ODVG grounding jsonl.

::

    python tools/dataset_converters/coco_to_grounding.py \
        data/coco/annotations/instances_val2017.json \
        data/coco_grounding/val2017.jsonl --img-dir data/coco/val2017

One line per image; every box is a region whose phrase is its category name,
and the categories absent from the image are its negatives (phrases that
match nothing; ``--max-negatives N`` keeps N of them, drawn with ``--seed``).
Image paths are written relative to OUT's folder; nothing is copied. Crowd
annotations are left out unless ``--include-crowd``. The logic lives in
``mmfusion.datasets.converters.coco_to_grounding``.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from mmfusion.datasets.converters import coco_to_grounding  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='COCO instances json -> ODVG grounding jsonl (category '
        'names as phrases, absent categories as negatives).')
    parser.add_argument('input', metavar='IN', help='COCO instances json')
    parser.add_argument('output', metavar='OUT', help='jsonl file to write')
    parser.add_argument('--img-dir', default=None,
                        help='folder of the images (default: the folder of '
                        'IN)')
    parser.add_argument('--max-negatives', type=int, default=None,
                        help='negatives kept per image (default: every '
                        'absent category)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed for --max-negatives (default 0)')
    parser.add_argument('--include-crowd', action='store_true',
                        help='keep crowd annotations as boxes')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        stats = coco_to_grounding(args.input, args.output, args.img_dir,
                                  args.max_negatives, args.seed,
                                  args.include_crowd)
    except (FileNotFoundError, ValueError) as exc:
        sys.exit(f'error: {exc}')
    print(f'{args.output}: {json.dumps(stats)}')


if __name__ == '__main__':
    main()
