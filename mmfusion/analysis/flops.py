"""FLOPs of a forward pass, with ``torch.utils.flop_counter``.

What is counted (the convention of torch's ``FlopCounterMode``):

- **FLOPs = 2 x multiply-accumulates of the matrix products and
  convolutions**: ``mm``, ``addmm``, ``bmm``, ``baddbmm``, ``convolution``
  (so ``nn.Linear``, ``nn.Conv*d``, ``torch.matmul``, ``@``), and the
  attention kernels: ``Q K^T`` and ``A V``, i.e. ``4 * B * heads * Nq * Nk *
  head_dim`` for one ``scaled_dot_product_attention`` call (the full
  ``Nq x Nk`` product even where a mask or ``is_causal`` hides keys).
- **Not counted**: bias additions, element-wise operations (activations,
  RNN gate non-linearities and products, residual sums, scaling), softmax,
  normalisation layers, pooling, embedding look-ups, data copies.
  These are small next to the products in the models here, and torch's
  counter leaves them out too.

Registered here because torch 2.x's counter skips them silently (0 FLOPs):

- ``aten._scaled_dot_product_flash_attention_for_cpu`` (and its backward):
  ``F.scaled_dot_product_attention`` on the CPU, also what
  ``nn.MultiheadAttention`` calls. Counted like torch's CUDA SDPA kernels.
- RNN kernels that run a whole layer in one op: ``aten.mkldnn_rnn_layer``
  (``nn.LSTM`` on the CPU with padded, i.e. not packed, input; its backward
  counts 2 x the forward, as a matrix product's backward does),
  ``aten._cudnn_rnn`` (``nn.LSTM``/``nn.GRU``/``nn.RNN`` on CUDA) and
  ``aten.miopen_rnn`` (ROCm), forward only. Per layer and direction:
  ``2 * tokens * gates * hidden * (input + hidden)`` with gates 4 (LSTM),
  3 (GRU), 1 (RNN) and tokens = ``T * B`` for padded input or the number of
  real tokens for a packed sequence. Where torch decomposes an RNN into
  per-step ``addmm``/``mm`` calls (``nn.GRU`` on the CPU, any packed
  sequence on the CPU) the count is already that formula.

The counters also switch off PyTorch's Transformer "fast path"
(``torch.backends.mha.set_fastpath_enabled``): in eval mode without
gradients ``nn.TransformerEncoderLayer`` and ``nn.MultiheadAttention``
otherwise run fused kernels the counter cannot see (0 FLOPs). The output is
the same either way.

Not covered: other fused kernels without a formula (e.g. custom CUDA ops of
mmcv); :func:`count_flops` returns the per-op counts, so a count can be
checked against the ops one expects.
"""
from __future__ import annotations

import contextlib
from math import prod
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

import torch
from torch.utils.flop_counter import (FlopCounterMode,
                                      sdpa_backward_flop_count,
                                      sdpa_flop_count)

aten = torch.ops.aten


def _sdpa_cpu_flop(query_shape, key_shape, value_shape, *args,
                   out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _sdpa_cpu_backward_flop(grad_out_shape, query_shape, key_shape,
                            value_shape, *args, out_shape=None,
                            **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape,
                                    value_shape)


def rnn_layer_flops(input_shape, weight_shapes) -> int:
    """``2 x tokens x`` (numel of every weight matrix): each input and
    hidden (and projection) matrix is applied once per token.

    ``input_shape`` is ``(T, B, C)``/``(B, T, C)`` (padded) or ``(N, C)``
    (packed: N real tokens); ``weight_shapes`` lists the layer's (or, for
    the cuDNN/MIOpen ops, every layer's and direction's) parameter shapes,
    where 1-D ones (biases) are skipped.
    """
    tokens = prod(input_shape[:-1])
    return 2 * tokens * sum(prod(s) for s in weight_shapes if len(s) == 2)


def _mkldnn_rnn_layer_flop(input_shape, weight0, weight1, *args,
                           out_shape=None, **kwargs) -> int:
    # One layer, one direction: weight0 (gates*H, C_in), weight1
    # (gates*H, H); weight2/3 are the biases.
    return rnn_layer_flops(input_shape, [weight0, weight1])


def _mkldnn_rnn_layer_backward_flop(input_shape, weight1, weight2, *args,
                                    out_shape=None, **kwargs) -> int:
    # The backward's weight1/weight2 are the forward's weight0/weight1.
    # Gradients for inputs and for weights: two products per forward one.
    return 2 * rnn_layer_flops(input_shape, [weight1, weight2])


def _fused_rnn_flop(input_shape, weight_shapes, *args, out_shape=None,
                    **kwargs) -> int:
    # Every layer and direction; layer l > 0 reads (directions * H)
    # channels, which its weight shapes already say.
    return rnn_layer_flops(input_shape, weight_shapes)


def _extra_formulas() -> Dict[Any, Callable]:
    table = {
        '_scaled_dot_product_flash_attention_for_cpu': _sdpa_cpu_flop,
        '_scaled_dot_product_flash_attention_for_cpu_backward':
        _sdpa_cpu_backward_flop,
        'mkldnn_rnn_layer': _mkldnn_rnn_layer_flop,
        'mkldnn_rnn_layer_backward': _mkldnn_rnn_layer_backward_flop,
        '_cudnn_rnn': _fused_rnn_flop,
        'miopen_rnn': _fused_rnn_flop,
    }
    formulas = {}
    for name, fn in table.items():
        op = getattr(aten, name, None)  # absent from some builds
        if op is not None:
            formulas[op] = fn
    return formulas


#: Formulas added to torch's for ops it does not count (see the module doc).
EXTRA_FLOP_FORMULAS: Dict[Any, Callable] = _extra_formulas()


@contextlib.contextmanager
def _mha_fastpath_disabled() -> Iterator[None]:
    mha = getattr(torch.backends, 'mha', None)
    if mha is None or not hasattr(mha, 'set_fastpath_enabled'):
        yield
        return
    previous = mha.get_fastpath_enabled()
    mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        mha.set_fastpath_enabled(previous)


@contextlib.contextmanager
def flop_counter(display: bool = False, depth: int = 2
                 ) -> Iterator[FlopCounterMode]:
    """A ``FlopCounterMode`` with :data:`EXTRA_FLOP_FORMULAS` and the MHA
    fast path off; read it with ``get_total_flops()`` or
    ``get_flop_counts()`` (per module up to ``depth``, then per op)."""
    counter = FlopCounterMode(display=display, depth=depth,
                              custom_mapping=EXTRA_FLOP_FORMULAS)
    with _mha_fastpath_disabled(), counter:
        yield counter


def count_flops(fn: Callable, *args, **kwargs) -> Tuple[int, Dict[str, int]]:
    """Run ``fn(*args, **kwargs)`` once and count its FLOPs.

    Returns ``(total, per op)``, e.g. ``(81920, {'aten.addmm': 51200,
    'aten.mm': 30720})``. Gradients are whatever the caller's mode is
    (wrap in ``torch.no_grad()`` to count a forward without autograd).
    """
    with flop_counter() as counter:
        fn(*args, **kwargs)
    per_op = {str(op): int(n) for op, n in
              counter.get_flop_counts().get('Global', {}).items()}
    return int(counter.get_total_flops()), per_op


def _batch_size(data: dict) -> int:
    samples = data.get('data_samples')
    if isinstance(samples, (list, tuple)) and samples:
        return len(samples)
    inputs = data.get('inputs')
    tensors = inputs.values() if isinstance(inputs, dict) else [inputs]
    for t in tensors:
        if isinstance(t, torch.Tensor) and t.dim() > 0:
            return int(t.shape[0])
    raise ValueError('cannot tell the batch size of the data batch')


def model_flops(model: torch.nn.Module, data_batch: dict,
                mode: str = 'tensor', depth: int = 2) -> Dict[str, Any]:
    """FLOPs of an mmengine model's forward on one dataloader batch.

    The batch goes through ``model.data_preprocessor`` (not counted), then
    ``model(**data, mode=mode)`` is counted in eval mode without gradients
    (``'tensor'``: the network without loss or post-processing). The
    model's train/eval state is restored.

    Returns ``total`` (the batch), ``batch_size``, ``per_sample``
    (``total / batch_size``; data-dependent parts, such as packed RNNs over
    texts of different lengths, make it the batch's average), ``per_op``
    and ``per_module`` (the counter's module names up to ``depth``, e.g.
    ``MultimodalClassifier.fusion``), both per sample.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            data = model.data_preprocessor(data_batch, False)
            batch_size = _batch_size(data)
            with flop_counter(depth=depth) as counter:
                model(**data, mode=mode)
    finally:
        model.train(was_training)
    counts = counter.get_flop_counts()
    total = int(counter.get_total_flops())
    per_module = {name: sum(ops.values()) / batch_size
                  for name, ops in counts.items() if name != 'Global'}
    per_op = {str(op): n / batch_size
              for op, n in counts.get('Global', {}).items()}
    return dict(total=total, batch_size=batch_size,
                per_sample=total / batch_size, per_op=per_op,
                per_module=per_module)


def format_count(value: Optional[float], unit: str = '') -> str:
    """``1234567`` -> ``'1.23 M'`` (k, M, G, T); ``'-'`` for None."""
    if value is None:
        return '-'
    for factor, prefix in ((1e12, 'T'), (1e9, 'G'), (1e6, 'M'), (1e3, 'k')):
        if abs(value) >= factor:
            return f'{value / factor:.3g} {prefix}{unit}'
    return f'{value:.3g} {unit}'.rstrip()
