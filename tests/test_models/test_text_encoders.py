import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope

from mmfusion.registry import MODELS

VOCAB = 20

CONFIGS = {
    'gru': dict(type='RNNTextEncoder', rnn_type='gru'),
    'lstm': dict(type='RNNTextEncoder', rnn_type='lstm'),
    'gru-2layer-uni-mean': dict(type='RNNTextEncoder', num_layers=2,
                                bidirectional=False, pooling='mean'),
    'lstm-max': dict(type='RNNTextEncoder', rnn_type='lstm', pooling='max'),
    'transformer-mean': dict(type='TransformerTextEncoder', max_length=16),
    'transformer-cls': dict(type='TransformerTextEncoder', max_length=16,
                            pooling='cls'),
}


def build(name):
    init_default_scope('mmfusion')
    cfg = dict(CONFIGS[name], vocab_size=VOCAB, embed_dims=16)
    if cfg['type'] == 'RNNTextEncoder':
        cfg['hidden_dims'] = 12
    else:
        cfg.update(num_heads=2, ffn_dims=32)
    return MODELS.build(cfg).eval()


def batch(lengths, total=None):
    total = total or max(lengths)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(2, VOCAB, (len(lengths), total), generator=g)
    mask = torch.arange(total)[None] < torch.tensor(lengths)[:, None]
    return ids.masked_fill(~mask, 0), mask


@pytest.mark.parametrize('name', list(CONFIGS))
@pytest.mark.parametrize('lengths', [[5], [5, 3]])
def test_shapes(name, lengths):
    enc = build(name)
    ids, mask = batch(lengths)
    out = enc(ids, mask)
    b, n = ids.shape
    assert out.tokens.shape == (b, n, enc.out_dim)
    assert out.pooled.shape == (b, enc.out_dim)
    assert out.mask.shape == (b, n) and out.present.tolist() == [True] * b


def test_out_dim():
    assert build('gru').out_dim == 24
    assert build('gru-2layer-uni-mean').out_dim == 12
    assert build('transformer-mean').out_dim == 16


@pytest.mark.parametrize('name', list(CONFIGS))
def test_padding_invariance(name):
    enc = build(name)
    ids, mask = batch([5, 3])
    ids_long = F.pad(ids, (0, 4))
    mask_long = F.pad(mask, (0, 4))
    with torch.no_grad():
        short, long = enc(ids, mask), enc(ids_long, mask_long)
    torch.testing.assert_close(long.pooled, short.pooled, atol=1e-6, rtol=0)
    torch.testing.assert_close(long.tokens[:, :5], short.tokens, atol=1e-6,
                               rtol=0)
    assert (long.tokens[:, 5:] == 0).all()


@pytest.mark.parametrize('name', list(CONFIGS))
def test_absent_rows(name):
    enc = build(name).train()
    ids, mask = batch([5, 3, 4])
    mask[2] = False  # no real token
    present = torch.tensor([True, False, True])  # text dropped
    out = enc(ids, mask, present)
    assert out.present.tolist() == [True, False, False]
    assert torch.isfinite(out.tokens).all() and torch.isfinite(
        out.pooled).all()
    assert (out.pooled[1:] == 0).all() and (out.tokens[1:] == 0).all()
    assert not out.mask[1:].any()
    (out.pooled.sum() + out.tokens.sum()).backward()
    for p in enc.parameters():
        if p.grad is not None:
            assert torch.isfinite(p.grad).all()


def test_vocab_size_error():
    enc = build('gru')
    with pytest.raises(ValueError, match='vocab_size'):
        enc(torch.tensor([[VOCAB + 1]]), torch.tensor([[True]]))


def test_transformer_max_length_error():
    enc = build('transformer-mean')
    ids, mask = batch([17])
    with pytest.raises(ValueError, match='max_length'):
        enc(ids, mask)
