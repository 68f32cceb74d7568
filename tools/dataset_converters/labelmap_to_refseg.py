"""Convert images + label-index PNGs + a class list to referring segmentation.

::

    python tools/dataset_converters/labelmap_to_refseg.py \
        data/my_semseg data/my_refseg/train.jsonl --labels-dir annotations

IN holds ``images/*.jpg`` (``--images-dir``), ``labels/*.png``
(``--labels-dir``: single-channel PNGs of class indices with the images'
names and sizes; ``--ignore-index``, default 255, marks unlabelled pixels)
and the class names (``classes.txt``, line N = class N, or ``--classes``).
One line per (image, class present but ``--background-index``, default 0;
-1 gives every class a phrase): ``{"image", "text": class name, "mask"}``.
Masks go to ``masks/<OUT stem>/`` beside OUT; paths are relative to OUT's
folder and images are not copied. The logic lives in
``mmfusion.datasets.converters.labelmap_to_refseg``.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from mmfusion.datasets.converters import labelmap_to_refseg  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Images + label-index PNGs + class list -> referring '
        'segmentation jsonl + mask PNGs (one phrase per class present).')
    parser.add_argument('input', metavar='IN', help='dataset root')
    parser.add_argument('output', metavar='OUT', help='jsonl file to write')
    parser.add_argument('--classes', default=None,
                        help='class names file (default: IN/classes.txt)')
    parser.add_argument('--images-dir', default='images',
                        help='image folder under IN (default: %(default)s)')
    parser.add_argument('--labels-dir', default='labels',
                        help='label-map folder under IN (default: '
                        '%(default)s)')
    parser.add_argument('--background-index', type=int, default=0,
                        help='class index that gets no phrase (default '
                        '%(default)s; -1: none)')
    parser.add_argument('--ignore-index', type=int, default=255,
                        help='label value of unlabelled pixels (default '
                        '%(default)s)')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    background = None if args.background_index < 0 else args.background_index
    try:
        stats = labelmap_to_refseg(args.input, args.output, args.classes,
                                   args.images_dir, args.labels_dir,
                                   background, args.ignore_index)
    except (FileNotFoundError, ValueError) as exc:
        sys.exit(f'error: {exc}')
    print(f'{args.output}: {json.dumps(stats)}')


if __name__ == '__main__':
    main()
