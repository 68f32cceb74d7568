"""From CONFIG + overrides + command-line flags to a Runner-ready Config."""
from __future__ import annotations

import os.path as osp
from pathlib import Path
from typing import Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.logging import print_log
from omegaconf import DictConfig, OmegaConf

from mmfusion.config import (compose_config, experiment_name,
                             to_mmengine_config, validate_config)
from mmfusion.config.convert import to_container
from mmfusion.utils import register_all_modules, resolve_dist_backend


def _set(cfg: DictConfig, key: str, value) -> None:
    OmegaConf.update(cfg, key, value, force_add=True, merge=False)


def compose_and_check(config: str, overrides: Sequence[str] = ()
                      ) -> Tuple[DictConfig, Path]:
    """Compose, then check every ``type`` and module key (nothing built)."""
    register_all_modules()
    cfg, path = compose_config(config, overrides)
    validate_config(to_container(cfg))
    return cfg, path


def choose_work_dir(cfg: DictConfig, config_path: Path,
                    work_dir: Optional[str]) -> str:
    """``--work-dir`` > the config's ``work_dir`` > ``work_dirs/<exp>``."""
    if work_dir:
        return osp.abspath(work_dir)
    if cfg.get('work_dir'):
        return osp.abspath(cfg.work_dir)
    return osp.abspath(osp.join('work_dirs', experiment_name(config_path)))


def apply_amp(cfg: DictConfig) -> None:
    """AmpOptimWrapper (float16, dynamic loss scale) on CUDA; bfloat16
    autocast on the CPU, where AmpOptimWrapper refuses to run."""
    if torch.cuda.is_available():
        _set(cfg, 'optim_wrapper.type', 'AmpOptimWrapper')
        _set(cfg, 'optim_wrapper.loss_scale', 'dynamic')
        print_log('--amp: AmpOptimWrapper (float16 autocast, dynamic loss '
                  'scale) on CUDA.', logger='current')
    else:
        _set(cfg, 'optim_wrapper.type', 'CPUAutocastOptimWrapper')
        _set(cfg, 'optim_wrapper.dtype', 'bfloat16')
        print_log('--amp: no CUDA device; training under bfloat16 autocast '
                  'on the CPU (CPUAutocastOptimWrapper).', logger='current')


def apply_auto_scale_lr(cfg: DictConfig, world_size: int) -> float:
    """lr x (world size x batch per process x accumulation) / base batch.

    mmengine's own scaling ignores gradient accumulation, so it is turned
    off and the learning rate is scaled here, once, in the config.
    """
    base = OmegaConf.select(cfg, 'auto_scale_lr.base_batch_size')
    if not base:
        raise KeyError('--auto-scale-lr needs `auto_scale_lr.base_batch_size` '
                       'in the config (the batch size the lr was tuned for).')
    batch = int(cfg.train_dataloader.batch_size)
    accum = int(OmegaConf.select(cfg, 'optim_wrapper.accumulative_counts',
                                 default=1) or 1)
    factor = world_size * batch * accum / float(base)
    lr = float(cfg.optim_wrapper.optimizer.lr)
    _set(cfg, 'optim_wrapper.optimizer.lr', lr * factor)
    _set(cfg, 'auto_scale_lr.enable', False)
    print_log(f'--auto-scale-lr: lr {lr:g} x ({world_size} x {batch} x '
              f'{accum}) / {base} = {lr * factor:g}', logger='current')
    return factor


def prepare_cfg(cfg: DictConfig, config_path: Path, *,
                work_dir: Optional[str] = None,
                launcher: str = 'none') -> DictConfig:
    """Settings every tool applies: work dir, launcher, dist backend."""
    _set(cfg, 'work_dir', choose_work_dir(cfg, config_path, work_dir))
    _set(cfg, 'launcher', launcher)
    backend = OmegaConf.select(cfg, 'env_cfg.dist_cfg.backend',
                               default='auto')
    _set(cfg, 'env_cfg.dist_cfg.backend', resolve_dist_backend(backend))
    if launcher != 'none' and not torch.cuda.is_available():
        wrapper = OmegaConf.select(cfg, 'model_wrapper_cfg') or {
            'type': 'MMDistributedDataParallel'}
        _set(cfg, 'model_wrapper_cfg', wrapper)
        for key, value in cpu_ddp_wrapper_args(cfg).items():
            if key == 'device_ids' or OmegaConf.select(
                    cfg, f'model_wrapper_cfg.{key}') is None:
                _set(cfg, f'model_wrapper_cfg.{key}', value)
    return cfg


def cpu_ddp_wrapper_args(cfg) -> dict:
    """The DDP wrapper arguments a CPU data-parallel run of ``cfg`` gets
    (where ``model_wrapper_cfg`` does not set them):

    - ``device_ids=None``: DDP rejects device ids for CPU modules, and
      mmengine passes them once a wrapper config is given;
    - ``broadcast_buffers=False``: what mmengine gives a GPU run without a
      wrapper config (every rank keeps its own BatchNorm statistics; no
      extra collective at each forward), so CPU and GPU runs agree;
    - ``bucket_cap_mb``: ``env_cfg.cpu_ddp_bucket_cap_mb`` when set.
    """
    args = {'device_ids': None, 'broadcast_buffers': False}
    env = cfg.get('env_cfg') or {}
    bucket = env.get('cpu_ddp_bucket_cap_mb')
    if bucket:
        args['bucket_cap_mb'] = bucket
    return args


def build_mmengine_cfg(cfg: DictConfig, config_path: Path) -> Config:
    """The Config handed to ``Runner.from_cfg`` (tuples where needed).

    Pure: the process-wide ``env_cfg`` settings (threads) are applied by the
    Runner (:func:`mmfusion.utils.set_torch_threads`).
    """
    # No filename: the Runner then dumps its copy as WORK_DIR/<timestamp>.py
    # instead of overwriting our resolved `config.yaml` with a YAML that
    # holds Python tuples.
    return to_mmengine_config(cfg, filename=None)
