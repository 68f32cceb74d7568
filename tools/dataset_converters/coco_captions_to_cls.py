"""Convert COCO captions to image-caption matching (classification).

::

    python tools/dataset_converters/coco_captions_to_cls.py \
        data/coco/annotations/captions_train2017.json data/coco_match
    python tools/dataset_converters/coco_captions_to_cls.py \
        data/coco/annotations/captions_val2017.json data/coco_match \
        --split test

Each image with its own caption is ``match``; with a caption of another
image of the same split (``--negatives`` per positive, drawn with
``--seed``) ``mismatch``. Images are found in ``--image-root`` (default:
``train2017/`` beside ``annotations/`` for ``captions_train2017.json``).
Without ``--split`` the images are split into train/val/test by
``--val-fraction``/``--test-fraction``. OUT gets ``classes.txt``
(``mismatch``, ``match``) and ``<split>.jsonl``; nothing is copied. The
logic lives in ``mmfusion.datasets.converters.coco_captions_to_cls``.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from mmfusion.datasets.converters import coco_captions_to_cls  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='COCO captions -> image-caption matching pairs with '
        'sampled negatives (mmfusion classification jsonl).')
    parser.add_argument('input', metavar='IN', help='COCO captions json')
    parser.add_argument('output', metavar='OUT', help='output folder')
    parser.add_argument('--image-root', default=None,
                        help='image folder (default: guessed from IN)')
    parser.add_argument('--negatives', type=int, default=1,
                        help='mismatched captions per positive (default 1)')
    parser.add_argument('--captions-per-image', type=int, default=1,
                        help='positives per image (default 1; 0 = all)')
    parser.add_argument('--split', default=None,
                        help='write everything as this split (e.g. test)')
    parser.add_argument('--val-fraction', type=float, default=0.1)
    parser.add_argument('--test-fraction', type=float, default=0.1)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--skip-missing', action='store_true',
                        help='leave out images whose file is missing')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        stats = coco_captions_to_cls(
            args.input, args.output, image_root=args.image_root,
            negatives=args.negatives,
            captions_per_image=args.captions_per_image, split=args.split,
            val_fraction=args.val_fraction, test_fraction=args.test_fraction,
            seed=args.seed, skip_missing=args.skip_missing)
    except (FileNotFoundError, ValueError) as exc:
        sys.exit(f'error: {exc}')
    print(f'{args.output}: {json.dumps(stats)}')


if __name__ == '__main__':
    main()
