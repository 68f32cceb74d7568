"""Convert Hateful Memes to mmfusion's classification format.

::

    python tools/dataset_converters/hateful_memes_to_cls.py \
        data/hateful_memes data/hateful_memes_cls

IN is the release folder (``img/``, ``train.jsonl``, ``dev_seen.jsonl`` or
``dev.jsonl``, ``test_seen.jsonl`` or ``test.jsonl``; lines ``{"id", "img",
"text", "label"}``) or one of its jsonl files. OUT gets ``classes.txt``
(``not_hateful``, ``hateful``) and ``train.jsonl``/``val.jsonl``/
``test.jsonl``; image paths are written relative to OUT, nothing is copied.
Unlabelled lines (the first phase's test set) are left out and counted.
Train on the output with ``configs/experiment/cls_custom.yaml``
(``data_root=OUT``). The logic lives in
``mmfusion.datasets.converters.hateful_memes_to_cls``.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from mmfusion.datasets.converters import hateful_memes_to_cls  # noqa: E402
from mmfusion.datasets.converters.hateful_memes_to_cls import \
    parse_files  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Hateful Memes (jsonl with img, text, label) -> '
        'mmfusion classification jsonl.')
    parser.add_argument('input', metavar='IN',
                        help='Hateful Memes folder or one of its jsonl files')
    parser.add_argument('output', metavar='OUT', help='output folder')
    parser.add_argument('--files', nargs='+', metavar='SPLIT=FILE',
                        help='which file is which split, e.g. train=train.'
                        'jsonl val=dev_unseen.jsonl test=test_unseen.jsonl '
                        '(default: train.jsonl, dev_seen.jsonl or dev.jsonl, '
                        'test_seen.jsonl or test.jsonl)')
    parser.add_argument('--skip-missing', action='store_true',
                        help='leave out lines whose image is missing')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        stats = hateful_memes_to_cls(args.input, args.output,
                                     parse_files(args.files),
                                     args.skip_missing)
    except (FileNotFoundError, ValueError) as exc:
        sys.exit(f'error: {exc}')
    print(f'{args.output}: {json.dumps(stats)}')


if __name__ == '__main__':
    main()
