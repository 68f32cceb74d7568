"""How a classifier's training step grows with batch, image and text size.

For each fusion block, the classification experiment (``cls_shapes`` with
``model/fusion=<fusion>``) is built -- the model only, no dataset -- and one
training step (preprocess, forward, loss, backward, gradient clipping,
optimiser step: :func:`mmfusion.benchmark.common.train_step_fn`) is
measured on synthetic batches in the data preprocessor's input format,
varying one axis at a time around a base point:

- ``batch``: samples per batch;
- ``image``: the side ``S`` of the square ``S x S`` images (the small CNN
  and the fusion blocks take any size; the fitted exponent is over the
  pixel count ``S * S``);
- ``tokens``: the words per text, which is exactly the token count: texts
  are synthetic words of the fitted vocabulary, and the tokenizer's
  ``max_length`` is raised to the axis's largest value so nothing is
  truncated (checked on every batch).

See :func:`run_scaling` for the figures and their units.
"""
from __future__ import annotations

import contextlib
import copy
import math
import os
import sys
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from torch import nn

from mmfusion.benchmark.common import (build_optimizer, median, task_config,
                                       time_calls, train_step_fn)

#: The fusion blocks measured by default.
DEFAULT_FUSIONS: Tuple[str, ...] = ('cross_attention', 'tensor', 'bilinear')

#: Words of the synthetic texts (one token each for the word-level
#: tokenizer: ``\w+``). More than ``max_length`` so texts are not repetitive.
VOCAB: Tuple[str, ...] = tuple(f'w{i}' for i in range(100))

AXES: Tuple[str, ...] = ('batch', 'image', 'tokens')

#: One (batch size, image side in pixels, tokens per text) point.
Point = Tuple[int, int, int]


@dataclass(frozen=True)
class ScalingGrid:
    """The values of each axis, the base point and the timing repeats.

    When one axis varies, the other two stay at their ``base_*`` value.
    ``repeats`` timed steps follow one warm-up step at each point.
    """

    batch: Tuple[int, ...]
    image: Tuple[int, ...]
    tokens: Tuple[int, ...]
    base_batch: int
    base_image: int
    base_tokens: int
    repeats: int

    def points(self, axis: str) -> List[Tuple[int, Point]]:
        """``(axis value, point)`` for each value of ``axis``, in order."""
        values = getattr(self, axis)
        base = {'batch': self.base_batch, 'image': self.base_image,
                'tokens': self.base_tokens}
        out = []
        for v in values:
            p = dict(base, **{axis: v})
            out.append((v, (p['batch'], p['image'], p['tokens'])))
        return out


#: The full grid: four points per axis, 3 timed repeats. The base point is
#: the experiment's 64 px images with batch 16 (it trains with 32): the
#: cross-attention block projects every image position, so batch 32 at
#: 128 px costs ~3 s a step on 2 loaded cores; batch 16 keeps the whole
#: run near a minute and a half.
FULL_GRID = ScalingGrid(batch=(8, 16, 32, 64), image=(32, 64, 96, 128),
                        tokens=(8, 16, 32, 64), base_batch=16,
                        base_image=64, base_tokens=16, repeats=3)
#: ``quick``: two tiny points per axis and one timed repeat (a smoke test
#: of the code path; the exponents are noisy at these sizes).
QUICK_GRID = ScalingGrid(batch=(2, 4), image=(16, 32), tokens=(4, 8),
                         base_batch=2, base_image=16, base_tokens=4,
                         repeats=1)


# ------------------------------------------------------------------ helpers
def loglog_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ``log(y)`` on ``log(x)``: the exponent ``k``
    of ``y ~ c * x**k`` (1: linear growth, 0: flat, 2: quadratic).

    Needs two or more points with positive values and not all ``x`` equal.
    """
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError('need two or more (x, y) pairs, got '
                         f'{len(xs)} x and {len(ys)} y values')
    if min(xs) <= 0 or min(ys) <= 0:
        raise ValueError('log-log fit needs positive values')
    lx = [math.log(x) for x in xs]
    ly = [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    var = sum((a - mx) ** 2 for a in lx)
    if var == 0:
        raise ValueError('log-log fit needs at least two distinct x values')
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / var


@contextlib.contextmanager
def _stderr_fd_silenced() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for the block.

    torch 2.13's kineto prints ``profiler_start``/``profiler_stop`` lines
    to the C stderr on every profiler start and stop (its log level is read
    only when torch loads); the benchmark would print two per point. Only
    the profiler's start and stop run under this, never the measured step,
    so no error of the model can be hidden.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2: nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def step_peak_bytes(step: Callable[[dict], object], data_batch: dict,
                    optimizer: torch.optim.Optimizer) -> int:
    """Peak bytes the CPU allocator holds for one training step, above
    what was allocated before it.

    The gradients are dropped first (``zero_grad(set_to_none=True)``), so
    what is live at the start is the parameters, the optimiser state and
    the input batch; the figure is the peak of (bytes allocated - bytes
    freed) during ``step(data_batch)``, summed over
    ``torch.profiler.profile(profile_memory=True)``'s allocation events in
    time order: the preprocessed inputs, the activations saved for
    backward, temporaries, and the new gradients. Memory that does not go
    through torch's CPU allocator (oneDNN scratch buffers, Python objects)
    is not included. The same shapes give the same figure on every run.
    """
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    optimizer.zero_grad(set_to_none=True)
    prof = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
    with _stderr_fd_silenced():
        prof.start()
    try:
        step(data_batch)
    finally:
        with _stderr_fd_silenced():
            prof.stop()
    # '[memory]' events: +nbytes per allocation, -nbytes per free. Frees
    # of blocks allocated before the start are not recorded (torch warns
    # and skips them), so the sum never dips below what the step added.
    # kineto_results is the raw event list: prof.events() would build
    # every FunctionEvent, slower and without the time order we need.
    events = [e for e in prof.profiler.kineto_results.events()
              if e.name() == '[memory]' and e.device_type() == DeviceType.CPU]
    # Stable sort: events of one nanosecond keep their recorded order.
    events.sort(key=lambda e: e.start_ns())
    live = peak = 0
    for e in events:
        live += int(e.nbytes())
        peak = max(peak, live)
    return peak


def synthetic_batch(batch_size: int, image_size: int, tokens: int,
                    num_classes: int = 2, seed: int = 0) -> dict:
    """A batch as the data preprocessor takes it, with random content.

    ``{'inputs': {'img': uint8 (B, 3, S, S), 'text': [B texts of `tokens`
    words of :data:`VOCAB`]}, 'data_samples': [MultimodalDataSample with
    gt_label (1,) long]}``. The same arguments give the same batch.
    """
    from mmfusion.structures import MultimodalDataSample

    gen = torch.Generator().manual_seed(seed)
    img = torch.randint(0, 256, (batch_size, 3, image_size, image_size),
                        dtype=torch.uint8, generator=gen)
    words = torch.randint(0, len(VOCAB), (batch_size, tokens), generator=gen)
    texts = [' '.join(VOCAB[i] for i in row) for row in words.tolist()]
    samples = [MultimodalDataSample(
        gt_label=torch.tensor([i % num_classes], dtype=torch.long))
        for i in range(batch_size)]
    return {'inputs': {'img': img, 'text': texts}, 'data_samples': samples}


def _check_tokens(model: nn.Module, batch: dict, tokens: int) -> None:
    """Raise unless the tokenizer turns the batch's texts into exactly
    ``tokens`` tokens (a truncating ``max_length`` or a subword tokenizer
    would make the tokens axis lie)."""
    ids, _mask = model.data_preprocessor.tokenizer.encode(
        batch['inputs']['text'])
    if ids.shape[1] != tokens:
        raise ValueError(
            f'texts of {tokens} words gave {ids.shape[1]} tokens: the '
            'tokens axis needs a word-level tokenizer whose max_length is '
            'at least the largest token count')


def build_cls_model(fusion: str, max_tokens: int,
                    overrides: Sequence[str] = (),
                    data_root: Optional[str] = None, seed: int = 0
                    ) -> Tuple[nn.Module, Callable[[dict], float],
                               torch.optim.Optimizer, int]:
    """The classifier of ``cls_shapes`` with ``fusion``, ready to train.

    Returns ``(model, step, optimizer, num_classes)``: the model in train
    mode with its tokenizer fitted on :data:`VOCAB` and ``max_length =
    max_tokens``, and a training step with the experiment's optimiser and
    gradient clipping. ``overrides`` (Hydra syntax) come after this
    function's own, so they win. The torch thread count is left as the
    caller set it (composing the config would set the experiment's).
    """
    from mmfusion.models.tokenizers import adopt_text_encoder_tokenizer
    from mmfusion.registry import MODELS
    from mmfusion.utils import register_all_modules

    register_all_modules()
    ours = [f'model/fusion={fusion}',
            f'model.data_preprocessor.tokenizer.max_length={max_tokens}']
    if data_root is not None:
        ours.append(f'data_root={data_root}')
    # Measured at the caller's thread count (composing a config does not
    # apply its env_cfg.torch_num_threads; only a Runner does).
    cfg = task_config('cls', ours + list(overrides))
    torch.manual_seed(seed)
    model = MODELS.build(copy.deepcopy(cfg.model))
    encoder = getattr(model, 'text_encoder', None)
    if encoder is not None:
        adopt_text_encoder_tokenizer(model.data_preprocessor, encoder)
    tokenizer = model.data_preprocessor.tokenizer
    if hasattr(tokenizer, 'fit') and not getattr(tokenizer, 'is_fitted',
                                                 False):
        tokenizer.fit([' '.join(VOCAB)])
    model.train()
    optimizer = build_optimizer(model, cfg)
    clip = cfg.optim_wrapper.get('clip_grad') or {}
    step = train_step_fn(model, optimizer, clip.get('max_norm'))
    num_classes = int(cfg.model.head.get('num_classes', 2))
    return model, step, optimizer, num_classes


def measure_point(model: nn.Module, step: Callable[[dict], float],
                  optimizer: torch.optim.Optimizer, point: Point,
                  repeats: int, num_classes: int = 2, seed: int = 0
                  ) -> Tuple[float, int]:
    """``(median seconds per training step, peak bytes)`` at ``point``.

    One warm-up step (kernel selection, the optimiser's state on the first
    step), ``repeats`` timed steps, then one step under the memory
    profiler (:func:`step_peak_bytes`; not timed, the profiler slows it).
    """
    batch_size, image_size, tokens = point
    batch = synthetic_batch(batch_size, image_size, tokens, num_classes,
                            seed)
    _check_tokens(model, batch, tokens)
    torch.manual_seed(seed)
    seconds = median(time_calls(lambda: step(batch), repeats, warmup=1))
    peak = step_peak_bytes(step, batch, optimizer)
    return seconds, peak


# --------------------------------------------------------------------- main
def run_scaling(quick: bool = False,
                fusions: Sequence[str] = DEFAULT_FUSIONS,
                data_root: Optional[str] = None,
                overrides: Sequence[str] = (),
                grid: Optional[ScalingGrid] = None,
                seed: int = 0) -> Dict[str, float]:
    """Time and memory of a classifier's training step along three axes.

    For every fusion in ``fusions`` and every value ``v`` of every axis
    (``batch``, ``image``, ``tokens``; the others at the grid's base point),
    the flat result holds:

    - ``scaling/<fusion>/<axis>=<v>/ms_per_iter``: median milliseconds of
      one training step (preprocess, forward, backward, clipping,
      optimiser step) on a synthetic batch;
    - ``.../ms_per_sample``: that divided by the batch size;
    - ``.../peak_mem_mb``: :func:`step_peak_bytes` in MiB (2**20 bytes):
      the peak of tensor memory allocated during the step, above the
      parameters and optimiser state;

    and the log-log least-squares slopes (:func:`loglog_slope`) per axis:

    - ``scaling/<fusion>/<axis>/time_exponent``: of ``ms_per_iter`` over
      the batch size, the pixel count ``S * S`` (``image``) or the tokens
      per text;
    - ``scaling/<fusion>/<axis>/mem_exponent``: of ``peak_mem_mb``, same x;
    - ``scaling/<fusion>/batch/time_per_sample_exponent``: of
      ``ms_per_sample`` over the batch size (``time_exponent - 1``; 0: time
      per sample flat, negative: larger batches are cheaper per sample).

    Args:
        quick: :data:`QUICK_GRID` (two tiny points per axis, one repeat:
            a few seconds) instead of :data:`FULL_GRID`.
        fusions: config names under ``configs/model/fusion``.
        data_root: the config's ``data_root`` (no dataset is built; only
            the config is composed with it).
        overrides: more Hydra overrides of the ``cls`` experiment.
        grid: a grid of one's own (overrides ``quick``).
        seed: seed of the weights and the synthetic batches.
    """
    grid = grid or (QUICK_GRID if quick else FULL_GRID)
    max_tokens = max(max(grid.tokens), grid.base_tokens)
    results: Dict[str, float] = {}
    for fusion in fusions:
        model, step, optimizer, num_classes = build_cls_model(
            fusion, max_tokens, overrides, data_root, seed)
        # The base point is on every axis: measured once.
        cache: Dict[Point, Tuple[float, int]] = {}
        for axis in AXES:
            xs: List[float] = []
            times: List[float] = []
            per_sample: List[float] = []
            mems: List[float] = []
            for value, point in grid.points(axis):
                if point not in cache:
                    cache[point] = measure_point(model, step, optimizer,
                                                 point, grid.repeats,
                                                 num_classes, seed)
                seconds, peak = cache[point]
                ms = seconds * 1e3
                mem_mb = peak / 2 ** 20
                prefix = f'scaling/{fusion}/{axis}={value}'
                results[f'{prefix}/ms_per_iter'] = ms
                results[f'{prefix}/ms_per_sample'] = ms / point[0]
                results[f'{prefix}/peak_mem_mb'] = mem_mb
                xs.append(value * value if axis == 'image' else value)
                times.append(ms)
                per_sample.append(ms / point[0])
                mems.append(mem_mb)
            prefix = f'scaling/{fusion}/{axis}'
            results[f'{prefix}/time_exponent'] = loglog_slope(xs, times)
            results[f'{prefix}/mem_exponent'] = loglog_slope(xs, mems)
            if axis == 'batch':
                results[f'{prefix}/time_per_sample_exponent'] = \
                    loglog_slope(xs, per_sample)
    return results
