"""env_cfg.torch_num_threads is applied by the Runner, not by composing or
converting a config (which benchmarks and tools do without training)."""
from __future__ import annotations

import torch

from mmfusion.apis.runner_config import (build_mmengine_cfg,
                                         compose_and_check, prepare_cfg)
from mmfusion.engine.runner import build_runner
from mmfusion.utils import set_torch_threads


def test_set_torch_threads():
    before = torch.get_num_threads()
    try:
        set_torch_threads({'torch_num_threads': 1})
        assert torch.get_num_threads() == 1
        set_torch_threads({})  # unset: left as it is
        set_torch_threads(None)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_applied_by_the_runner_only(tmp_path):
    before = torch.get_num_threads()
    want = 1 if before != 1 else 2
    try:
        cfg, path = compose_and_check(
            'cls_shapes', [f'env_cfg.torch_num_threads={want}',
                           f'data_root={tmp_path / "data"}'])
        prepare_cfg(cfg, path, work_dir=str(tmp_path / 'work'))
        mm_cfg = build_mmengine_cfg(cfg, path)
        assert torch.get_num_threads() == before
        build_runner(mm_cfg)  # datasets are built lazily: nothing generated
        assert torch.get_num_threads() == want
    finally:
        torch.set_num_threads(before)
