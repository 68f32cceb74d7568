"""Check a config's datasets against their format before training.

::

    python tools/validate_dataset.py cls_custom data_root=data/my_cls
    python tools/validate_dataset.py det_shapes --split train --decode-images
    python tools/validate_dataset.py work_dirs/cls_shapes/config.yaml

Builds each split's dataset as training would (annotations only, no
pipeline), runs the dataset's own checks on every line, and prints the
number of samples per split and label (classes; for grounding, samples with
boxes and negatives; for segmentation, samples with a mask) and then every
problem found, with file and line. ``--decode-images`` also decodes every
image (slower; by default image files must exist and are decoded when
first loaded in training). Exit status: 0 when nothing is wrong, 1 when
problems were found, 2 for a config error. See
:mod:`mmfusion.datasets.validation`.
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional, Sequence

from .common import exit_on_user_error, split_overrides

SPLITS = ('train', 'val', 'test')


def parse_args(argv: Sequence[str]):
    parser = argparse.ArgumentParser(
        description='Check the datasets of a config against their format: '
        'counts per split and label, then every problem with file and line. '
        'Every argument with `=` is a Hydra override.',
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument('config', help='experiment YAML (any folder), a '
                        'packaged experiment name, or a work dir config.yaml')
    parser.add_argument('--split', choices=SPLITS, action='append',
                        default=None, help='only this split (repeatable; '
                        'default: train, val and test)')
    parser.add_argument('--decode-images', action='store_true',
                        help='decode every image too (slower)')
    rest, overrides = split_overrides(argv)
    args = parser.parse_args(rest)
    args.overrides = overrides
    return args


def run(args):
    from mmfusion.apis.runner_config import compose_and_check
    from mmfusion.config import to_mmengine_config
    from mmfusion.datasets.validation import (format_reports,
                                              validate_config_datasets)
    from mmfusion.utils import register_all_modules
    from mmengine.logging import MMLogger
    from mmengine.registry import init_default_scope

    cfg, path = compose_and_check(args.config, args.overrides)
    mm = to_mmengine_config(cfg, path)
    # The datasets log each bad line as they skip it; the report lists them.
    MMLogger.get_instance('mmfusion-validate-dataset', log_level='ERROR')
    register_all_modules()
    init_default_scope(mm.get('default_scope') or 'mmfusion')
    reports = validate_config_datasets(mm, args.split, args.decode_images)
    if not reports:
        raise KeyError('the config has no train/val/test_dataloader.dataset')
    print(format_reports(reports))
    return reports


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    with exit_on_user_error():
        reports = run(args)
    sys.exit(0 if all(r.ok for r in reports) else 1)


if __name__ == '__main__':
    main()
