"""Check after training that every rank holds the same weights."""
from __future__ import annotations

import torch
from mmengine.dist import all_gather_object, get_world_size, is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmfusion.registry import HOOKS


def weight_checksum(model: torch.nn.Module) -> float:
    """Sum of every parameter and buffer, in float64."""
    if is_model_wrapper(model):
        model = model.module
    total = torch.zeros((), dtype=torch.float64)
    for tensor in model.state_dict().values():
        if torch.is_floating_point(tensor):
            total += tensor.detach().double().sum().cpu()
    return float(total)


@HOOKS.register_module()
class DistConsistencyHook(Hook):
    """Rank 0 gathers every rank's weight checksum after training, logs
    them, and fails if they differ by more than ``tolerance`` (relative):
    replicas that drifted apart mean a broken distributed set-up."""

    priority = 'LOWEST'

    def __init__(self, tolerance: float = 1e-6) -> None:
        self.tolerance = tolerance

    def after_train(self, runner) -> None:
        if get_world_size() < 2:
            return
        sums = all_gather_object(weight_checksum(runner.model))
        if is_main_process():
            runner.logger.info(f'DistConsistencyHook: weight checksums per '
                               f'rank: {sums}')
            ref = sums[0]
            for rank, value in enumerate(sums):
                if abs(value - ref) > self.tolerance * max(1.0, abs(ref)):
                    raise RuntimeError(
                        f'rank {rank} weights differ from rank 0 after '
                        f'training (checksum {value!r} vs {ref!r})')
