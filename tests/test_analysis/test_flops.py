"""FLOPs counting against analytic counts.

Convention (torch's FlopCounterMode): FLOPs = 2 x multiply-accumulates of
the matrix products; biases, element-wise ops and softmax are not counted.
"""
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from mmfusion.analysis.flops import (EXTRA_FLOP_FORMULAS, count_flops,
                                     format_count, model_flops)
from mmfusion.models.utils.attention import MaskedMultiheadAttention

B, NQ, NK, E, HEADS = 2, 5, 7, 16, 4


def attention_flops(b, nq, nk, e):
    """MaskedMultiheadAttention: 4 projections + Q K^T + A V."""
    macs = (b * nq * e * e       # q_proj
            + 2 * b * nk * e * e  # k_proj, v_proj
            + b * nq * e * e      # out_proj
            + b * nq * nk * e     # Q K^T, all heads (heads * head_dim = e)
            + b * nq * nk * e)    # A V
    return 2 * macs


def rnn_flops(gates, b, t, input_size, hidden, num_layers, bidirectional):
    """Per layer, direction and token: gates * hidden * (in + hidden) MACs
    (input and hidden projections); layer l > 0 reads dirs * hidden."""
    dirs = 2 if bidirectional else 1
    macs = 0
    for layer in range(num_layers):
        c_in = input_size if layer == 0 else dirs * hidden
        macs += dirs * b * t * gates * hidden * (c_in + hidden)
    return 2 * macs


@pytest.mark.parametrize('return_attention', [False, True])
@pytest.mark.parametrize('masked', [False, True])
def test_attention_block_matches_analytic(return_attention, masked):
    # SDPA on the CPU runs aten._scaled_dot_product_flash_attention_for_cpu
    # (no formula in torch); the explicit path runs bmm. Both must count
    # the same, the full Nq x Nk products even where keys are masked.
    attn = MaskedMultiheadAttention(E, HEADS).eval()
    q, k = torch.randn(B, NQ, E), torch.randn(B, NK, E)
    mask = torch.arange(NK)[None] < torch.tensor([[NK], [3]]) \
        if masked else None
    with torch.no_grad():
        total, per_op = count_flops(attn, q, k, key_mask=mask,
                                    return_attention=return_attention)
    assert total == attention_flops(B, NQ, NK, E)
    if not return_attention:
        assert per_op['aten._scaled_dot_product_flash_attention_for_cpu'] \
            == 4 * B * NQ * NK * E


def test_sdpa_backward_is_counted():
    q = torch.randn(B, HEADS, NQ, E // HEADS, requires_grad=True)
    k = torch.randn(B, HEADS, NK, E // HEADS)
    v = torch.randn(B, HEADS, NK, E // HEADS, requires_grad=True)
    _, per_op = count_flops(lambda: torch.nn.functional.
                            scaled_dot_product_attention(q, k, v)
                            .sum().backward())
    # torch's SDPA backward formula: 5 products of B x Nq x Nk x E MACs
    # (recomputed Q K^T, dO V^T, P^T dO, dS K, dS^T Q): 2.5 x the forward.
    assert per_op['aten._scaled_dot_product_flash_attention_for_cpu'] \
        == 4 * B * NQ * NK * E
    assert per_op['aten._scaled_dot_product_flash_attention_for_cpu_'
                  'backward'] == 10 * B * NQ * NK * E


@pytest.mark.parametrize('num_layers,bidirectional', [(1, False), (2, True)])
def test_lstm_matches_analytic(num_layers, bidirectional):
    torch.manual_seed(0)
    lstm = nn.LSTM(5, 7, num_layers=num_layers, batch_first=True,
                   bidirectional=bidirectional).eval()
    x = torch.randn(3, 4, 5)
    with torch.no_grad():
        total, per_op = count_flops(lstm, x)
    assert total == rnn_flops(4, 3, 4, 5, 7, num_layers, bidirectional)
    # Padded input on the CPU: one fused op per layer and direction.
    assert set(per_op) == {'aten.mkldnn_rnn_layer'}


def test_packed_lstm_and_gru_count_real_tokens():
    torch.manual_seed(0)
    x = torch.randn(3, 4, 5)
    lengths = torch.tensor([4, 2, 1])
    packed = pack_padded_sequence(x, lengths, batch_first=True,
                                  enforce_sorted=False)
    for rnn, gates in ((nn.LSTM, 4), (nn.GRU, 3)):
        model = rnn(5, 7, batch_first=True, bidirectional=True).eval()
        with torch.no_grad():
            total, _ = count_flops(model, packed)
        # One sample of "length" sum(lengths): every real token once.
        assert total == rnn_flops(gates, 1, int(lengths.sum()), 5, 7, 1,
                                  True)


def test_gru_padded_matches_analytic():
    gru = nn.GRU(5, 7, num_layers=2, batch_first=True).eval()
    with torch.no_grad():
        total, _ = count_flops(gru, torch.randn(3, 4, 5))
    assert total == rnn_flops(3, 3, 4, 5, 7, 2, False)


def test_cudnn_rnn_formula():
    # No GPU needed: the formula reads shapes (cuDNN passes every layer's
    # and direction's weights; 1-D ones are biases).
    lstm = nn.LSTM(5, 7, num_layers=2, bidirectional=True)
    formula = EXTRA_FLOP_FORMULAS[torch.ops.aten._cudnn_rnn]
    shapes = [tuple(w.shape) for w in lstm._flat_weights]
    assert formula((4, 3, 5), shapes) == rnn_flops(4, 3, 4, 5, 7, 2, True)
    # Packed: (real tokens, C) input.
    assert formula((9, 5), shapes) == rnn_flops(4, 1, 9, 5, 7, 2, True)


def test_transformer_fast_path_is_counted():
    # In eval mode without gradients nn.TransformerEncoderLayer takes a
    # fused "fast path" op the counter cannot see; it is switched off.
    layer = nn.TransformerEncoderLayer(E, HEADS, dim_feedforward=32,
                                       batch_first=True,
                                       norm_first=True).eval()
    x = torch.randn(B, NQ, E)
    pad = torch.zeros(B, NQ, dtype=torch.bool)
    pad[1, 3:] = True
    with torch.no_grad():
        total, _ = count_flops(layer, x, src_key_padding_mask=pad)
    ffn = 2 * (2 * B * NQ * E * 32)
    assert total == attention_flops(B, NQ, NQ, E) + ffn
    assert torch.backends.mha.get_fastpath_enabled()  # restored


def test_model_flops_per_sample_and_modules():
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import MODELS, init_default_scope

    from mmfusion.structures import MultimodalDataSample
    init_default_scope('mmfusion')
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='MultimodalClassifier',
        data_preprocessor=dict(
            type='MultimodalDataPreprocessor',
            tokenizer=dict(type='VocabTokenizer', max_length=8,
                           max_vocab_size=20)),
        image_encoder=dict(type='SmallCNN', channels=(8, 8),
                           strides=(2, 2)),
        text_encoder=dict(type='RNNTextEncoder', embed_dims=8,
                          hidden_dims=4, rnn_type='lstm'),
        fusion=dict(type='CrossAttentionFusion', embed_dims=8, num_heads=2,
                    out_dim=8),
        head=dict(type='ClsHead', num_classes=2)))
    texts = ['is the circle red', 'is there a square']
    model.data_preprocessor.tokenizer.fit(texts)
    items = []
    for text in texts * 2:
        sample = MultimodalDataSample(gt_label=torch.tensor([0]))
        items.append(dict(inputs=dict(
            img=torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8),
            text=text), data_samples=sample))
    model.train()
    out = model_flops(model, pseudo_collate(items))
    assert model.training
    assert out['batch_size'] == 4
    assert out['per_sample'] == out['total'] / 4 > 0
    for part in ('image_encoder', 'text_encoder', 'fusion', 'head'):
        assert out['per_module'][f'MultimodalClassifier.{part}'] > 0, part
    assert out['per_op']['aten._scaled_dot_product_flash_attention_for_cpu'] \
        > 0


def test_format_count():
    assert format_count(None) == '-'
    assert format_count(1234567) == '1.23 M'
    assert format_count(2.5e9) == '2.5 G'
    assert format_count(512) == '512'
