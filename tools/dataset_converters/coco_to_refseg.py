"""Convert a COCO instances file to referring segmentation (jsonl + masks).

::

    python tools/dataset_converters/coco_to_refseg.py \
        data/coco/annotations/instances_val2017.json \
        data/coco_refseg/val.jsonl \
        --img-dir data/coco/val2017

IN is a COCO instances json (``images``, ``annotations`` with
``segmentation`` polygons or RLE, ``categories``); images are looked up in
``--img-dir`` (default: IN's folder). One line per (image, category
present): ``{"image", "text": category name, "mask"}``; the mask is the
union of the category's instances (1), its crowd regions ignored (255).
Masks are written to ``masks/<OUT stem>/`` beside OUT; paths are relative to
OUT's folder and images are not copied. The logic lives in
``mmfusion.datasets.converters.coco_to_refseg``.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from mmfusion.datasets.converters import coco_to_refseg  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='COCO instances json -> referring segmentation jsonl + '
        'mask PNGs (category names as phrases).')
    parser.add_argument('input', metavar='IN', help='COCO instances json')
    parser.add_argument('output', metavar='OUT', help='jsonl file to write')
    parser.add_argument('--img-dir', default=None,
                        help="folder of the images (default: IN's folder)")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        stats = coco_to_refseg(args.input, args.output, args.img_dir)
    except (FileNotFoundError, ValueError) as exc:
        sys.exit(f'error: {exc}')
    print(f'{args.output}: {json.dumps(stats)}')


if __name__ == '__main__':
    main()
