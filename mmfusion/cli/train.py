"""Train a model from a Hydra config on an mmengine Runner.

Launch commands::

    # one process (CPU or one GPU)
    python tools/train.py configs/experiment/cls_shapes.yaml
    python tools/train.py cls_shapes model/fusion=concat train_cfg.max_iters=500
    # print the composed config and exit
    python tools/train.py cls_shapes --cfg job --resolve
    # resume the newest checkpoint in the work dir
    python tools/train.py work_dirs/cls_shapes/config.yaml --resume
    # several GPUs (or CPU processes, gloo) on this machine
    bash tools/dist_train.sh configs/experiment/cls_shapes.yaml 8
    # several nodes: run on each node with its NODE_RANK
    NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 PORT=29500 \
        bash tools/dist_train.sh configs/experiment/cls_shapes.yaml 8
    # Slurm
    GPUS=16 bash tools/slurm_train.sh PARTITION JOB cls_shapes
    # a sweep: every combination, one process per job, then a summary
    python tools/train.py cls_shapes -m model/fusion=concat,film randomness.seed=0,1,2
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys
from typing import List, Optional, Sequence

from .common import add_mim_compat_args, split_overrides


def parse_args(argv: Sequence[str]):
    parser = argparse.ArgumentParser(
        description='Train an mmfusion model. Every argument with `=` is a '
        'Hydra override (key=value, +key=value, ~key, model/fusion=film).',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__)
    parser.add_argument('config', help='experiment YAML (any folder), a '
                        'packaged experiment name, or a work dir config.yaml')
    parser.add_argument('--work-dir', help='where logs and checkpoints go')
    parser.add_argument('--resume', nargs='?', const='auto', default=None,
                        help='resume: `auto` (or no value) takes the newest '
                        'checkpoint in the work dir; or a checkpoint path')
    parser.add_argument('--load-from', help='initialise weights from a '
                        'checkpoint (no optimizer state)')
    parser.add_argument('--unsafe-load', action='store_true',
                        help='load checkpoints with torch.load(weights_only='
                        'False): runs any code the file holds, so only for '
                        'files you trust (default: refuse files that need '
                        'more than tensors and plain data; see '
                        'docs/reliability.md)')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision: float16 AMP on CUDA, bfloat16 '
                        'autocast on the CPU')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale lr by the effective batch size over '
                        'auto_scale_lr.base_batch_size')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'])
    parser.add_argument('--cfg', choices=['job'], default=None,
                        help='print the composed config and exit')
    parser.add_argument('--resolve', action='store_true',
                        help='with --cfg job: resolve interpolations')
    parser.add_argument('-m', '--multirun', action='store_true',
                        help='expand sweep overrides (a,b,c) into jobs, '
                        'run each in its own process, write a summary')
    add_mim_compat_args(parser)
    rest, overrides = split_overrides(argv)
    args = parser.parse_args(rest)
    args.overrides = overrides
    return args


def run(args) -> Optional[dict]:
    """Train (and test) one job; returns the test metrics, if any."""
    from omegaconf import OmegaConf

    from mmfusion.apis.runner_config import (apply_amp, apply_auto_scale_lr,
                                             build_mmengine_cfg,
                                             compose_and_check, prepare_cfg)
    from mmfusion.config import dump_resolved_yaml
    from mmfusion.config.build_errors import annotate_build_errors
    from mmfusion.engine.runner import build_runner
    from mmfusion.utils import init_cpu_distributed, world_size_from_env
    from mmfusion.utils.checkpoint import (check_checkpoint_file,
                                           set_unsafe_load)

    set_unsafe_load(getattr(args, 'unsafe_load', False))
    # A checkpoint named on the command line is checked before anything is
    # composed or built: a missing or unsafe file fails at once.
    for given in (args.resume if args.resume not in (None, 'auto') else None,
                  args.load_from):
        if given:
            check_checkpoint_file(given)

    if args.local_rank and 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    cfg, path = compose_and_check(args.config, args.overrides)
    if args.cfg == 'job':
        print(OmegaConf.to_yaml(cfg, resolve=args.resolve))
        return None
    prepare_cfg(cfg, path, work_dir=args.work_dir, launcher=args.launcher)
    if args.amp:
        apply_amp(cfg)
    if args.auto_scale_lr:
        apply_auto_scale_lr(cfg, world_size_from_env())
    if args.resume is not None:
        OmegaConf.update(cfg, 'resume', True, force_add=True)
        if args.resume != 'auto':
            OmegaConf.update(cfg, 'load_from', args.resume, force_add=True)
    elif args.load_from:
        OmegaConf.update(cfg, 'load_from', args.load_from, force_add=True)
    if cfg.get('load_from'):
        check_checkpoint_file(str(cfg.load_from))
    mm_cfg = build_mmengine_cfg(cfg, path)
    if args.launcher != 'none' and mm_cfg.env_cfg.dist_cfg.backend == 'gloo':
        init_cpu_distributed(args.launcher)
    rank = int(os.environ.get('RANK', '0'))
    if rank == 0:
        # The resolved config, minus this run's resume flags, so the file
        # reloads as a plain config for testing or a later `--resume`.
        dumped = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
        dumped.resume = False
        dumped.launcher = 'none'
        dump_resolved_yaml(dumped, osp.join(mm_cfg.work_dir, 'config.yaml'))
    with annotate_build_errors(mm_cfg):
        runner = build_runner(mm_cfg)
        runner.train()
    metrics = None
    if mm_cfg.get('test_after_train', False) and mm_cfg.get(
            'test_dataloader'):
        metrics = runner.test()
        metrics = {k: float(v) for k, v in metrics.items()}
        if rank == 0:
            out = osp.join(mm_cfg.work_dir, 'test_metrics.json')
            with open(out, 'w') as f:
                json.dump(metrics, f, indent=2, sort_keys=True)
            print('Test metrics (' + out + '):')
            print(json.dumps(metrics, indent=2, sort_keys=True))
    if rank == 0:
        # Parameters, FLOPs per sample and time per iteration: a sweep's
        # summary and tools/analysis/ablation_table.py read them.
        from mmfusion.analysis.model_stats import write_model_stats
        stats = write_model_stats(runner)
        print('Model stats (' + osp.join(mm_cfg.work_dir, 'model_stats.json')
              + '): ' + json.dumps({k: stats[k] for k in (
                  'params', 'flops', 'time_per_iter')}))
    return metrics


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from mmfusion.cli.common import apply_mim_compat_args, exit_on_user_error
    apply_mim_compat_args(args)
    with exit_on_user_error():
        _main(args)


def _main(args) -> None:
    if args.multirun:
        from mmfusion.apis.sweep import run_sweep
        if args.launcher != 'none':
            sys.exit('-m runs each job in its own process, one after another;'
                     ' it cannot be combined with --launcher '
                     f'{args.launcher}. Launch single jobs instead.')
        run_sweep(args)
        return
    run(args)


if __name__ == '__main__':
    main()
