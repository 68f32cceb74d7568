"""Evaluate a checkpoint on the test split; write the metrics as flat JSON.

::

    python tools/test.py work_dirs/cls_shapes/config.yaml \
        work_dirs/cls_shapes/iter_9000.pth --json-out metrics.json
    bash tools/dist_test.sh CONFIG CHECKPOINT 8 --json-out metrics.json

Robustness (see :mod:`mmfusion.evaluation.robustness`): after the clean
evaluation, one more pass over the test split per setting::

    python tools/test.py CONFIG CHECKPOINT --drop-modality text \
        --drop-modality image --corrupt image_noise:0.1,0.5 \
        --corrupt text_word_drop:0.2,0.5 --json-out metrics.json

adds ``robust/<setting>/<metric>`` keys and
``robust/gain_over_best_unimodal`` to the JSON and writes the curve
``robustness.png`` to ``--show-dir`` (or the work dir).
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence

from .common import (add_mim_compat_args, apply_mim_compat_args,
                     exit_on_user_error, split_overrides)


def parse_args(argv: Sequence[str]):
    parser = argparse.ArgumentParser(
        description='Test an mmfusion checkpoint on the test split. Every '
        'argument with `=` is a Hydra override.')
    parser.add_argument('config', help='experiment YAML, packaged experiment '
                        'name, or a work dir config.yaml')
    parser.add_argument('checkpoint', help='checkpoint file (.pth)')
    parser.add_argument('--work-dir', help='where the test logs go')
    parser.add_argument('--json-out', help='write the metrics here as one '
                        'flat JSON object')
    parser.add_argument('--show-dir', help='write pictures of predictions '
                        'here')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'])
    parser.add_argument('--unsafe-load', action='store_true',
                        help='load the checkpoint with torch.load('
                        'weights_only=False): runs any code the file holds, '
                        'so only for files you trust (see '
                        'docs/reliability.md)')
    robust = parser.add_argument_group(
        'robustness', 'extra evaluations of the test split after the clean '
        'one; results go to the JSON as robust/<setting>/<metric> and the '
        'curve to robustness.png in --show-dir or the work dir')
    robust.add_argument(
        '--drop-modality', action='append', default=[],
        type=_arg_type(_parse_drop), metavar='text|image',
        help='evaluate with this modality absent for every sample '
        '(repeatable, or text,image); both give '
        'robust/gain_over_best_unimodal')
    robust.add_argument(
        '--corrupt', action='append', default=[],
        type=_arg_type(_parse_corrupt), metavar='KIND:S1,S2,...',
        help='evaluate once per strength S (repeatable). KIND: image_noise '
        '(Gaussian noise, std = S x 255), image_blur (Gaussian blur, sigma '
        '= S x the shorter image side, S <= 1), text_word_drop (each word '
        'dropped with probability S), text_shuffle (word order shuffled '
        'with probability S)')
    robust.add_argument('--corrupt-seed', type=int, default=0,
                        help='seed of the random corruptions (default 0)')
    add_mim_compat_args(parser)
    rest, overrides = split_overrides(argv)
    args = parser.parse_args(rest)
    args.overrides = overrides
    args.drop_modality = [m for ms in args.drop_modality for m in ms]
    return args


def _parse_drop(spec: str):
    from mmfusion.evaluation.robustness import parse_drop_modality
    return parse_drop_modality(spec)


def _parse_corrupt(spec: str):
    from mmfusion.evaluation.robustness import parse_corruption
    return parse_corruption(spec)


def _arg_type(parse):
    """An argparse ``type``: our messages, argparse's exit status 2."""
    def convert(text: str):
        from mmfusion.evaluation.robustness import RobustnessSpecError
        try:
            return parse(text)
        except RobustnessSpecError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    convert.__name__ = parse.__name__.lstrip('_')
    return convert


def run(args) -> Dict[str, float]:
    from omegaconf import OmegaConf

    from mmfusion.config.build_errors import annotate_build_errors
    from mmfusion.engine.runner import build_runner
    from mmfusion.utils.checkpoint import (check_checkpoint_file,
                                           set_unsafe_load)

    from mmfusion.apis.runner_config import (build_mmengine_cfg,
                                             compose_and_check, prepare_cfg)
    from mmfusion.engine.hooks import PredictionVisualizationHook
    from mmfusion.evaluation import robustness
    from mmfusion.utils import init_cpu_distributed

    settings = robustness.build_settings(
        getattr(args, 'drop_modality', None) or (),
        getattr(args, 'corrupt', None) or (),
        seed=getattr(args, 'corrupt_seed', 0))

    set_unsafe_load(getattr(args, 'unsafe_load', False))
    if osp.isfile(args.checkpoint):
        check_checkpoint_file(args.checkpoint)  # before anything is built
    else:
        raise FileNotFoundError(f'checkpoint `{args.checkpoint}` does not '
                                'exist')
    cfg, path = compose_and_check(args.config, args.overrides)
    prepare_cfg(cfg, path, work_dir=args.work_dir, launcher=args.launcher)
    OmegaConf.update(cfg, 'load_from', osp.abspath(args.checkpoint),
                     force_add=True)
    OmegaConf.update(cfg, 'resume', False, force_add=True)
    if args.show_dir:
        OmegaConf.update(cfg, 'custom_hooks', [
            *OmegaConf.to_container(cfg.get('custom_hooks', [])),
            {'type': 'PredictionVisualizationHook',
             'out_dir': osp.abspath(args.show_dir)}], force_add=True)
    mm_cfg = build_mmengine_cfg(cfg, path)
    if args.launcher != 'none' and mm_cfg.env_cfg.dist_cfg.backend == 'gloo':
        init_cpu_distributed(args.launcher)
    for setting in settings:  # a pipeline without Pack* fails here, early
        robustness.with_transforms(mm_cfg.test_dataloader, setting.transforms)
    with annotate_build_errors(mm_cfg):
        runner = build_runner(mm_cfg)
        metrics = {k: float(v) for k, v in runner.test().items()}
    rank0 = int(os.environ.get('RANK', '0')) == 0
    if settings:
        results = robustness.evaluate_settings(
            runner, settings, mm_cfg.test_dataloader, mm_cfg.test_evaluator,
            mm_cfg.get('test_cfg'), skip_hooks=(PredictionVisualizationHook,))
        clean = metrics
        metrics = robustness.robustness_metrics(clean, results)
        if rank0:
            png = robustness.plot_robustness(
                clean, results, settings,
                osp.join(osp.abspath(args.show_dir or runner.work_dir),
                         'robustness.png'))
            runner.logger.info(f'robustness curve written to {png}')
    if rank0:
        text = json.dumps(metrics, indent=2, sort_keys=True)
        print(text)
        if args.json_out:
            os.makedirs(osp.dirname(osp.abspath(args.json_out)),
                        exist_ok=True)
            with open(args.json_out, 'w') as f:
                f.write(text + '\n')
    return metrics


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    apply_mim_compat_args(args)
    with exit_on_user_error():
        run(args)


if __name__ == '__main__':
    main()
