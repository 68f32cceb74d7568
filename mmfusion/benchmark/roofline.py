"""How close a training step comes to the machine's matrix-product speed.

The "roof" here is the FLOP rate ``torch.matmul`` achieves on square
matrices with the current torch thread count: the best a model made of
matrix products could hope for on this machine. A training step's
fraction of the roof is ``(FLOPs per step / seconds per step) / roof``,
with FLOPs counted as :mod:`mmfusion.analysis.flops` counts them (2 x the
multiply-accumulates of matrix products, convolutions and attention).
"""
from __future__ import annotations

from typing import Callable

import torch

from mmfusion.analysis.flops import count_flops
from mmfusion.benchmark.common import median, time_calls


def matmul_flops_per_s(size: int = 1024, repeats: int = 10,
                       dtype: torch.dtype = torch.float32) -> float:
    """The FLOP/s ``torch.matmul`` achieves here, in FLOPs per second.

    Multiplies two ``size x size`` matrices of ``dtype`` (``2 * size**3``
    FLOPs each time) ``repeats`` times after two warm-up products, and
    divides by the median time. Uses the current ``torch.get_num_threads()``
    (set it before calling to measure a given thread count).

    Args:
        size: the side of the square matrices.
        repeats: timed products (the median is taken).
        dtype: element type, e.g. ``torch.float32``.
    """
    if size < 1 or repeats < 1:
        raise ValueError(f'size and repeats must be >= 1, got size={size}, '
                         f'repeats={repeats}')
    # A private generator: the caller's global RNG state stays untouched.
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=gen).to(dtype)
    b = torch.randn(size, size, generator=gen).to(dtype)
    # Writing into a preallocated result times the product, not the
    # allocator.
    out = torch.empty(size, size, dtype=dtype)
    # Two warm-ups: the first may pick kernels and fault pages in.
    times = time_calls(lambda: torch.matmul(a, b, out=out), repeats,
                       warmup=2)
    return 2.0 * size ** 3 / median(times)


def train_step_flops(step_fn: Callable[[dict], object],
                     data_batch: dict) -> int:
    """FLOPs of one training step ``step_fn(data_batch)``: forward + backward.

    Runs the step once under :func:`mmfusion.analysis.flops.count_flops`
    (so it really trains: the parameters change) and returns the total
    count: the forward's matrix products, convolutions and attention, and
    the backward's (about twice the forward, less where an input needs no
    gradient, e.g. the first layer's input). The optimiser update and
    gradient clipping (element-wise ``_foreach`` ops and norms) are not
    counted: the counter has no formula for element-wise work or
    reductions, and they are small next to the products. The data
    preprocessing inside the step has no products and counts 0.
    """
    total, _per_op = count_flops(step_fn, data_batch)
    return int(total)


def roof_fraction(flops_per_step: int, seconds_per_step: float,
                  peak_flops_per_s: float) -> float:
    """Achieved FLOP/s of a step as a fraction of ``peak_flops_per_s``.

    ``flops_per_step / seconds_per_step / peak_flops_per_s``: 1.0 means the
    step ran as fast as the roof (e.g. :func:`matmul_flops_per_s`); a step
    of element-wise work and overhead scores far below it.
    """
    if seconds_per_step <= 0 or peak_flops_per_s <= 0:
        raise ValueError('seconds_per_step and peak_flops_per_s must be > 0, '
                         f'got {seconds_per_step} and {peak_flops_per_s}')
    if flops_per_step < 0:
        raise ValueError(f'flops_per_step must be >= 0, got {flops_per_step}')
    return flops_per_step / seconds_per_step / peak_flops_per_s
