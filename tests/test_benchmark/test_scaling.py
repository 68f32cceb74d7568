"""The roofline and scaling sections of the benchmark (issue 8)."""
from __future__ import annotations

import math
from typing import Callable, Dict, Iterator

import pytest
import torch
from torch import nn

from mmfusion.benchmark.roofline import (matmul_flops_per_s, roof_fraction,
                                         train_step_flops)
from mmfusion.benchmark.scaling import (AXES, DEFAULT_FUSIONS, QUICK_GRID,
                                        VOCAB, loglog_slope, run_scaling,
                                        step_peak_bytes, synthetic_batch)


@pytest.fixture()
def one_thread() -> Iterator[None]:
    # The machine is shared: one thread keeps timings from thrashing
    # (the benchmark itself uses whatever the caller set).
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# ---------------------------------------------------------------- roofline
def test_roof_fraction_arithmetic() -> None:
    # 1 GFLOP in 0.5 s = 2 GFLOP/s, a quarter of an 8 GFLOP/s roof.
    assert roof_fraction(10 ** 9, 0.5, 8e9) == pytest.approx(0.25)
    assert roof_fraction(0, 1.0, 1.0) == 0.0
    with pytest.raises(ValueError):
        roof_fraction(10, 0.0, 1.0)
    with pytest.raises(ValueError):
        roof_fraction(10, 1.0, 0.0)


def test_matmul_flops_per_s_positive(one_thread: None) -> None:
    rate = matmul_flops_per_s(size=64, repeats=3)
    assert math.isfinite(rate) and rate > 0
    assert torch.get_num_threads() == 1


def _mlp_step(model: nn.Module, optimizer: torch.optim.Optimizer
              ) -> Callable[[Dict[str, torch.Tensor]], float]:
    """A hand-written training step: MSE loss, backward, update."""
    def step(batch: Dict[str, torch.Tensor]) -> float:
        loss = (model(batch['x']) - batch['y']).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return float(loss.detach())
    return step


def test_train_step_flops_linear_exact() -> None:
    b, c_in, c_out = 8, 16, 4
    torch.manual_seed(0)
    model = nn.Linear(c_in, c_out)
    step = _mlp_step(model, torch.optim.AdamW(model.parameters()))
    batch = {'x': torch.randn(b, c_in), 'y': torch.randn(b, c_out)}
    # Forward addmm 2*B*in*out; backward only the weight gradient (the
    # input needs none): another 2*B*in*out. AdamW's foreach ops count 0.
    assert train_step_flops(step, batch) == 4 * b * c_in * c_out


def test_train_step_flops_two_layers_exact() -> None:
    b, c_in, hidden, c_out = 8, 16, 32, 4
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(c_in, hidden), nn.ReLU(),
                          nn.Linear(hidden, c_out))
    step = _mlp_step(model, torch.optim.SGD(model.parameters(), lr=0.1))
    batch = {'x': torch.randn(b, c_in), 'y': torch.randn(b, c_out)}
    first, second = 2 * b * c_in * hidden, 2 * b * hidden * c_out
    # Forward: both products. Backward: 2x the second layer's (input and
    # weight gradients), 1x the first's (weight gradient only).
    expected = (first + second) + (2 * second + first)
    assert train_step_flops(step, batch) == expected


# ----------------------------------------------------------------- scaling
def test_loglog_slope_recovers_exponent() -> None:
    xs = [8, 16, 32, 64]
    assert loglog_slope(xs, [3.0 * x ** 1.5 for x in xs]) == \
        pytest.approx(1.5)
    assert loglog_slope(xs, [5.0 / x for x in xs]) == pytest.approx(-1.0)
    assert loglog_slope(xs, [7.0] * 4) == pytest.approx(0.0, abs=1e-12)
    # Least squares over noisy points: between the extremes' slopes.
    noisy = [x ** 2 * f for x, f in zip(xs, (1.1, 0.9, 1.05, 0.95))]
    assert 1.8 < loglog_slope(xs, noisy) < 2.1
    with pytest.raises(ValueError):
        loglog_slope([4], [1.0])
    with pytest.raises(ValueError):
        loglog_slope([4, 4], [1.0, 2.0])
    with pytest.raises(ValueError):
        loglog_slope([1, 2], [0.0, 1.0])


def test_synthetic_texts_have_exact_token_count() -> None:
    from mmfusion.models.tokenizers import VocabTokenizer
    tok = VocabTokenizer(max_length=64).fit([' '.join(VOCAB)])
    for tokens in (4, 8, 64):
        batch = synthetic_batch(3, 16, tokens)
        ids, mask = tok.encode(batch['inputs']['text'])
        assert ids.shape == (3, tokens) and bool(mask.all())
        assert batch['inputs']['img'].shape == (3, 3, 16, 16)
        assert batch['inputs']['img'].dtype == torch.uint8
    # Same arguments, same batch.
    a, b = synthetic_batch(2, 8, 5), synthetic_batch(2, 8, 5)
    assert a['inputs']['text'] == b['inputs']['text']
    assert torch.equal(a['inputs']['img'], b['inputs']['img'])


def test_step_peak_bytes_counts_gradients_deterministically() -> None:
    torch.manual_seed(0)
    model = nn.Linear(64, 64)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    step = _mlp_step(model, optimizer)
    batch = {'x': torch.randn(16, 64), 'y': torch.randn(16, 64)}
    step(batch)
    peaks = [step_peak_bytes(step, batch, optimizer) for _ in range(3)]
    assert len(set(peaks)) == 1
    grad_bytes = sum(p.numel() * p.element_size()
                     for p in model.parameters())
    assert peaks[0] >= grad_bytes


def test_run_scaling_quick(data_root, one_thread: None) -> None:
    results = run_scaling(quick=True, data_root=str(data_root))
    assert torch.get_num_threads() == 1  # composing the config kept it
    expected = set()
    for fusion in DEFAULT_FUSIONS:
        for axis in AXES:
            for value in getattr(QUICK_GRID, axis):
                for metric in ('ms_per_iter', 'ms_per_sample',
                               'peak_mem_mb'):
                    expected.add(f'scaling/{fusion}/{axis}={value}/{metric}')
            for metric in ('time_exponent', 'mem_exponent'):
                expected.add(f'scaling/{fusion}/{axis}/{metric}')
        expected.add(f'scaling/{fusion}/batch/time_per_sample_exponent')
    assert set(results) == expected
    for name, value in results.items():
        assert isinstance(value, float) and math.isfinite(value), name
        if not name.endswith('_exponent'):
            assert value > 0, name
    for fusion in DEFAULT_FUSIONS:
        small, large = QUICK_GRID.batch
        per_iter = results[f'scaling/{fusion}/batch={large}/ms_per_iter']
        assert results[f'scaling/{fusion}/batch={large}/ms_per_sample'] == \
            pytest.approx(per_iter / large)
        # Per-sample time exponent is the time exponent minus one.
        assert results[f'scaling/{fusion}/batch/time_per_sample_exponent'] \
            == pytest.approx(
                results[f'scaling/{fusion}/batch/time_exponent'] - 1)
        # More pixels never need less activation memory.
        lo, hi = QUICK_GRID.image
        assert results[f'scaling/{fusion}/image={hi}/peak_mem_mb'] > \
            results[f'scaling/{fusion}/image={lo}/peak_mem_mb']
