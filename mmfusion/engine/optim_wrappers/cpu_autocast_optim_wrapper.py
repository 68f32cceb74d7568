"""Mixed precision on the CPU: bfloat16 autocast around the forward pass."""
from __future__ import annotations

from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper

from mmfusion.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class CPUAutocastOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose forward runs under ``torch.autocast('cpu')``.

    mmengine's ``AmpOptimWrapper`` asserts a GPU; on the CPU, mixed
    precision means bfloat16 autocast (float16 is not supported there), and
    no loss scaling is needed since bfloat16 keeps float32's range.
    """

    def __init__(self, *args, dtype: str = 'bfloat16', **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.cast_dtype = getattr(torch, dtype)

    @contextmanager
    def optim_context(self, model: torch.nn.Module):
        with super().optim_context(model), torch.autocast(
                device_type='cpu', dtype=self.cast_dtype):
            yield
