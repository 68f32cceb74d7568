"""Convert Pascal VOC XML annotations to ODVG grounding jsonl.

::

    python tools/dataset_converters/voc_to_grounding.py \
        data/VOCdevkit/VOC2007 data/voc2007_grounding
    python tools/dataset_converters/voc_to_grounding.py \
        data/VOCdevkit/VOC2012 data/voc12_val.jsonl --split val

IN is a VOC year folder (``Annotations/``, ``JPEGImages/``,
``ImageSets/Main/<split>.txt``). OUT is a folder (one ``<split>.jsonl`` per
split: train, val, test where listed) or a ``.jsonl`` file for one
``--split``. One line per image: every object is a region whose phrase is
its class name (``pottedplant`` -> ``potted plant``; ``--raw-names`` keeps
VOC's), and the classes absent from the image are its negatives
(``--max-negatives N`` keeps N, drawn with ``--seed``). Image paths are
written relative to the jsonl file's folder; nothing is copied. The logic
lives in ``mmfusion.datasets.converters.voc_to_grounding``.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from mmfusion.datasets.converters import voc_to_grounding  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Pascal VOC XML -> ODVG grounding jsonl (class names as '
        'phrases, absent classes as negatives).')
    parser.add_argument('input', metavar='IN', help='VOC year folder')
    parser.add_argument('output', metavar='OUT',
                        help='output folder, or a .jsonl file for one split')
    parser.add_argument('--split', action='append', default=None,
                        help='split list(s) to convert (repeatable; default '
                        'train, val and test where present)')
    parser.add_argument('--classes', default=None,
                        help='class names file (default: the 20 VOC classes)')
    parser.add_argument('--raw-names', action='store_true',
                        help="keep VOC's names (pottedplant) as phrases")
    parser.add_argument('--skip-difficult', action='store_true',
                        help='leave out objects marked difficult')
    parser.add_argument('--max-negatives', type=int, default=None,
                        help='negatives kept per image (default: all)')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        classes = None
        if args.classes:
            with open(args.classes, encoding='utf-8') as f:
                classes = [line.strip() for line in f if line.strip()]
        stats = voc_to_grounding(
            args.input, args.output, splits=args.split, classes=classes,
            raw_names=args.raw_names, skip_difficult=args.skip_difficult,
            max_negatives=args.max_negatives, seed=args.seed)
    except (FileNotFoundError, ValueError) as exc:
        sys.exit(f'error: {exc}')
    print(f'{args.output}: {json.dumps(stats)}')


if __name__ == '__main__':
    main()
