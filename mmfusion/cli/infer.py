"""Predict with a trained model on your own (image, text) pairs.

::

    python tools/infer.py work_dirs/cls_shapes work_dirs/cls_shapes/iter_9000.pth \
        --image scene.png --text "is the circle left of the square?"
    # several pairs: one --text per --image (or one --text for all)
    python tools/infer.py CONFIG CKPT --image a.png --image b.png \
        --text "is there a cube?" --out-dir outputs

Prints each prediction as JSON (classification: ``pred_class``,
``pred_score``, every class's score, the words the model does not know)
and writes the picture, with the text's attention over the image when the
fusion attends, to ``OUT_DIR/vis/<image name>.png``.
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence

from .common import exit_on_user_error, split_overrides


def parse_args(argv: Sequence[str]):
    parser = argparse.ArgumentParser(
        description='Predict with a trained mmfusion model on (image, text) '
        'pairs; print the predictions and write the pictures. Every argument '
        'with `=` is a Hydra override.',
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument('config', help='experiment YAML, packaged experiment '
                        'name, or a work dir (or its config.yaml)')
    parser.add_argument('checkpoint', help='checkpoint file (.pth)')
    parser.add_argument('--image', action='append', required=True,
                        help='image file or folder of images (repeatable)')
    parser.add_argument('--text', action='append', required=True,
                        help='the text: one for every image, or one per '
                        '--image, in order')
    parser.add_argument('--out-dir', default='outputs',
                        help='pictures go to OUT_DIR/vis/, predictions to '
                        'OUT_DIR/preds/ (default: %(default)s)')
    parser.add_argument('--no-save-vis', action='store_true',
                        help='do not write the pictures')
    parser.add_argument('--no-save-pred', action='store_true',
                        help='do not write OUT_DIR/preds/<name>.json')
    parser.add_argument('--device', default=None,
                        help='cpu, cuda, cuda:1 (default: CUDA if present)')
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--classes', nargs='+', default=None,
                        help='class names (default: from the checkpoint)')
    parser.add_argument('--no-attention', action='store_true',
                        help='do not ask for or draw the attention heat-map')
    parser.add_argument('--token', type=int, action='append', default=None,
                        help='draw the attention of this text token (index '
                        'among the tokens printed; repeatable) instead of '
                        'the mean over all tokens')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='detection: lowest score drawn')
    parser.add_argument('--show', action='store_true',
                        help='show each picture in a window')
    parser.add_argument('--unsafe-load', action='store_true',
                        help='load a checkpoint that needs more than tensors '
                        'and plain data (weights_only=False): trusted files '
                        'only')
    rest, overrides = split_overrides(argv)
    args = parser.parse_args(rest)
    args.overrides = overrides
    return args


def expand_pairs(images: Sequence[str], texts: Sequence[str]) -> List[tuple]:
    """(image file, text) pairs: one text per image or one for all; a
    folder stands for its images (sorted), each with the folder's text."""
    from mmfusion.apis.inferencer import IMAGE_EXTENSIONS
    if len(texts) not in (1, len(images)):
        raise SystemExit(f'error: {len(images)} --image but {len(texts)} '
                         '--text: give one --text, or one per --image')
    if len(texts) == 1:
        texts = list(texts) * len(images)
    pairs = []
    for img, text in zip(images, texts):
        if osp.isdir(img):
            files = sorted(f for f in os.listdir(img)
                           if f.lower().endswith(IMAGE_EXTENSIONS))
            if not files:
                raise FileNotFoundError(f'no images in folder `{img}`')
            pairs.extend((osp.join(img, f), text) for f in files)
        elif not osp.isfile(img):
            raise FileNotFoundError(f'image `{img}` does not exist')
        else:
            pairs.append((img, text))
    return pairs


def run(args) -> List[Dict]:
    from mmfusion.apis import MultimodalInferencer
    from mmfusion.apis.predictions import dumps_prediction

    pairs = expand_pairs(args.image, args.text)
    if args.unsafe_load:
        from mmfusion.utils.checkpoint import set_unsafe_load
        set_unsafe_load(True)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint `{args.checkpoint}` does not '
                                'exist')
    inferencer = MultimodalInferencer(args.config, args.checkpoint,
                                      device=args.device,
                                      overrides=args.overrides,
                                      classes=args.classes)
    out = inferencer(
        pairs, batch_size=args.batch_size, out_dir=args.out_dir,
        no_save_vis=args.no_save_vis, no_save_pred=args.no_save_pred,
        show=args.show, draw_attention=not args.no_attention,
        return_attention=False if args.no_attention else None,
        token_index=args.token, pred_score_thr=args.score_thr)
    predictions = out['predictions']
    for pred in predictions:
        shown = {k: v for k, v in pred.items()
                 if k not in ('attention_map', 'mask')}
        print(dumps_prediction(shown))
    if not args.no_save_vis:
        print(f'pictures: {osp.join(osp.abspath(args.out_dir), "vis")}')
    return predictions


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    with exit_on_user_error():
        run(args)


if __name__ == '__main__':
    main()
