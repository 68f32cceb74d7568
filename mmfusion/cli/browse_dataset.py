"""Pictures of dataset samples as the model sees them (after the pipeline).

::

    python tools/browse_dataset.py cls_shapes --out-dir browse/
    python tools/browse_dataset.py det_shapes --split val --num 8
    python tools/browse_dataset.py my_experiment.yaml --shuffle --num 50

Each picture is the image after the pipeline's transforms (resizing,
flips, corruptions, ...), the text it is paired with, and the ground truth
(class, boxes or mask), drawn by
:class:`~mmfusion.visualization.MultimodalVisualizer`. Files:
``OUT_DIR/<index>_<image name>.png``.
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys
from typing import List, Optional, Sequence

import numpy as np

from .common import exit_on_user_error, split_overrides

SPLITS = ('train', 'val', 'test')


def parse_args(argv: Sequence[str]):
    parser = argparse.ArgumentParser(
        description='Write pictures of dataset samples after the pipeline, '
        'text and ground truth included. Every argument with `=` is a Hydra '
        'override.',
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument('config', help='experiment YAML (any folder), a '
                        'packaged experiment name, or a work dir config.yaml')
    parser.add_argument('--split', choices=SPLITS, default='train',
                        help='which dataloader (default: %(default)s)')
    parser.add_argument('--out-dir', '--output-dir', dest='out_dir',
                        default=None, help='where the pictures go (default: '
                        'work_dirs/browse_dataset/<experiment>_<split>)')
    parser.add_argument('--num', type=int, default=20,
                        help='samples to draw (default: %(default)s; 0: all)')
    parser.add_argument('--shuffle', action='store_true',
                        help='a random selection instead of the first ones')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of --shuffle')
    parser.add_argument('--show', action='store_true',
                        help='also show each picture in a window')
    rest, overrides = split_overrides(argv)
    args = parser.parse_args(rest)
    args.overrides = overrides
    return args


def packed_image(inputs: dict) -> Optional[np.ndarray]:
    """The packed ``(3, H, W)`` BGR uint8 tensor as an RGB ``(H, W, 3)``."""
    img = inputs.get('img')
    if img is None:
        return None
    arr = img.detach().cpu().numpy() if hasattr(img, 'detach') else \
        np.asarray(img)
    arr = np.transpose(arr, (1, 2, 0))
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, -1)
    return np.ascontiguousarray(arr[..., 2::-1])


def run(args) -> List[str]:
    from mmengine.registry import DATASETS

    from mmfusion.apis.runner_config import compose_and_check
    from mmfusion.config import experiment_name, to_mmengine_config
    from mmfusion.utils.progress import track
    from mmfusion.visualization import MultimodalVisualizer

    cfg, path = compose_and_check(args.config, args.overrides)
    mm = to_mmengine_config(cfg)
    loader = mm.get(f'{args.split}_dataloader')
    if not loader or 'dataset' not in loader:
        raise KeyError(f'the config has no {args.split}_dataloader.dataset')
    dataset = DATASETS.build(loader['dataset'])
    out_dir = args.out_dir or osp.join(
        'work_dirs', 'browse_dataset', f'{experiment_name(path)}_{args.split}')
    os.makedirs(out_dir, exist_ok=True)

    n = len(dataset)
    indices = np.arange(n)
    if args.shuffle:
        indices = np.random.default_rng(args.seed).permutation(n)
    if args.num > 0:
        indices = indices[:args.num]
    classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
    vis = MultimodalVisualizer.get_instance(
        f'mmfusion-browse-{os.getpid()}-{id(dataset)}')
    written = []
    for idx in track(indices.tolist(), desc=f'browse {args.split}',
                     unit='sample'):
        item = dataset[idx]
        inputs, sample = item['inputs'], item['data_samples']
        image = packed_image(inputs)
        if image is None:  # an absent image: a grey canvas
            h, w = sample.metainfo.get('img_shape') or (64, 64)
            image = np.full((h, w, 3), 96, dtype=np.uint8)
        img_path = sample.metainfo.get('img_path') or f'sample{idx}'
        stem = osp.splitext(osp.basename(str(img_path)))[0]
        out = osp.join(out_dir, f'{idx:05d}_{stem}.png')
        vis.add_datasample(stem, image, sample, draw_gt=True,
                           draw_pred=False, show=args.show, out_file=out,
                           text=inputs.get('text'), classes=classes)
        written.append(out)
    print(f'{len(written)} pictures of the {args.split} split '
          f'({n} samples) in {osp.abspath(out_dir)}')
    return written


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    with exit_on_user_error():
        run(args)


if __name__ == '__main__':
    main()
