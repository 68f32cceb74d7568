"""--auto-scale-lr scales by the effective batch: processes x batch per
process x accumulation steps, over auto_scale_lr.base_batch_size."""
from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from mmfusion.apis.runner_config import (apply_auto_scale_lr,
                                         build_mmengine_cfg,
                                         compose_and_check)


def _cfg(batch: int, accum: int = 1):
    overrides = [f'train_dataloader.batch_size={batch}']
    if accum > 1:
        overrides.append(f'+optim_wrapper.accumulative_counts={accum}')
    cfg, path = compose_and_check('cls_shapes', overrides)
    return cfg, path


@pytest.mark.parametrize('world, batch, accum, effective', [
    (2, 8, 1, 16),   # 2 processes x batch 8
    (1, 8, 2, 16),   # 1 process x batch 8 x 2 accumulation steps
    (1, 8, 1, 8),    # 1 process x batch 8: half of the above
])
def test_lr_follows_effective_batch(world, batch, accum, effective):
    cfg, path = _cfg(batch, accum)
    base_lr = float(cfg.optim_wrapper.optimizer.lr)
    base_batch = int(cfg.auto_scale_lr.base_batch_size)
    factor = apply_auto_scale_lr(cfg, world)
    assert factor == effective / base_batch
    assert float(cfg.optim_wrapper.optimizer.lr) == pytest.approx(
        base_lr * effective / base_batch)
    # Scaled once: mmengine's own scaling (which ignores accumulation) is
    # off in what the Runner receives.
    mm_cfg = build_mmengine_cfg(cfg, path)
    assert mm_cfg.auto_scale_lr.enable is False
    assert mm_cfg.optim_wrapper.optimizer.lr == pytest.approx(
        base_lr * effective / base_batch)


def test_two_ways_to_sixteen_agree_and_eight_is_half():
    lrs = {}
    for key, (world, batch, accum) in {'2x8': (2, 8, 1), '1x8x2': (1, 8, 2),
                                       '1x8': (1, 8, 1)}.items():
        cfg, _ = _cfg(batch, accum)
        apply_auto_scale_lr(cfg, world)
        lrs[key] = float(cfg.optim_wrapper.optimizer.lr)
    assert lrs['2x8'] == lrs['1x8x2'] == pytest.approx(2 * lrs['1x8'])


def test_missing_base_batch_size_is_an_error():
    cfg, _ = _cfg(8)
    OmegaConf.update(cfg, 'auto_scale_lr.base_batch_size', None)
    with pytest.raises(KeyError, match='base_batch_size'):
        apply_auto_scale_lr(cfg, 1)
