"""Evaluate a checkpoint on the test split; write the metrics as flat JSON.

::

    python tools/test.py work_dirs/cls_shapes/config.yaml \
        work_dirs/cls_shapes/iter_4000.pth --json-out metrics.json
    bash tools/dist_test.sh CONFIG CHECKPOINT 8 --json-out metrics.json
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence

from .common import add_mim_compat_args, exit_on_user_error, split_overrides


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
    add_mim_compat_args(parser)
    rest, overrides = split_overrides(argv)
    args = parser.parse_args(rest)
    args.overrides = overrides
    return args


def run(args) -> Dict[str, float]:
    from mmengine.runner import Runner
    from omegaconf import OmegaConf

    from mmfusion.apis.runner_config import (build_mmengine_cfg,
                                             compose_and_check, prepare_cfg)
    from mmfusion.utils import init_cpu_distributed

    if not osp.isfile(args.checkpoint):
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
    runner = Runner.from_cfg(mm_cfg)
    metrics = {k: float(v) for k, v in runner.test().items()}
    if int(os.environ.get('RANK', '0')) == 0:
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
    with exit_on_user_error():
        run(args)


if __name__ == '__main__':
    main()
