"""Token- and spatial-level attention fusion blocks and the shared layer.

The contract tests in ``test_fusions.py`` cover these blocks too (every
registered block); here: the explicit-weights path, masks, directions,
position encodings and absent modalities.
"""
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope

from mmfusion.models.fusions import (CoAttentionFusion, CrossAttentionFusion,
                                     SingleStreamFusion)
from mmfusion.models.fusions.cross_attention_fusion import \
    sine_position_encoding_2d as old_import
from mmfusion.models.utils import (AttentionBlock, MaskedMultiheadAttention,
                                   sine_position_encoding_2d)
from mmfusion.registry import MODELS
from mmfusion.structures import ModalityFeatures

IMAGE_DIM, TEXT_DIM, H, W, L, HEADS = 16, 12, 4, 5, 6, 4

BLOCKS = {
    't2i': dict(type='CrossAttentionFusion'),
    'i2t': dict(type='CrossAttentionFusion', direction='image_to_text'),
    'i2t_max': dict(type='CrossAttentionFusion', direction='image_to_text',
                    pooling='max'),
    'co': dict(type='CoAttentionFusion'),
    'single': dict(type='SingleStreamFusion'),
    'single_prenorm': dict(type='SingleStreamFusion', norm_first=True),
}


def build(key, num_layers=1, **kwargs):
    init_default_scope('mmfusion')
    torch.manual_seed(0)
    cfg = dict(BLOCKS[key], image_dim=IMAGE_DIM, text_dim=TEXT_DIM,
               embed_dims=16, num_heads=HEADS, num_layers=num_layers,
               out_dim=8)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def inputs(b=2, lengths=(6, 3), seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.arange(L)[None] < torch.tensor(lengths)[:, None]
    tokens = torch.randn(b, L, TEXT_DIM, generator=g) * mask[..., None]
    img = torch.randn(b, IMAGE_DIM, H, W, generator=g)
    return img, tokens, mask


def feats(img, tokens, mask, image_present=None, text_present=None):
    b = img.shape[0]
    ones = torch.ones(b, dtype=torch.bool)
    image_present = ones if image_present is None else image_present
    text_present = ones if text_present is None else text_present
    image = ModalityFeatures.from_map(
        img * image_present[:, None, None, None], image_present)
    text = ModalityFeatures(
        tokens=tokens * text_present[:, None, None],
        mask=mask & text_present[:, None], present=text_present)
    return image, text


# ------------------------------------------------------------ shared layer
@pytest.mark.parametrize('dropout', [0.0, 0.3])  # dropout: training only
def test_attention_layer_explicit_matches_sdpa(dropout):
    torch.manual_seed(0)
    attn = MaskedMultiheadAttention(16, 4, dropout=dropout).eval()
    q, k = torch.randn(3, 5, 16), torch.randn(3, 7, 16)
    key_mask = torch.tensor([[True] * 7, [True] * 3 + [False] * 4,
                             [False] * 7])
    with torch.no_grad():
        fast, none = attn(q, k, key_mask=key_mask)
        out, weights = attn(q, k, key_mask=key_mask, return_attention=True)
        ref, _ = attn(q, k)
    assert none is None
    torch.testing.assert_close(out, fast, atol=1e-5, rtol=0)
    assert weights.shape == (3, 4, 5, 7)
    torch.testing.assert_close(weights[:2].sum(-1), torch.ones(2, 4, 5))
    assert (weights[1, ..., 3:] == 0).all()
    # No valid key: attends to nothing (zero output and weights).
    assert (out[2] == 0).all() and (weights[2] == 0).all()
    torch.testing.assert_close(out[0], ref[0], atol=1e-5, rtol=0)
    # Masked keys change nothing.
    k2 = k.clone()
    k2[1, 3:] = 100.0
    with torch.no_grad():
        out2, _ = attn(q, k2, key_mask=key_mask)
    torch.testing.assert_close(out2[1], fast[1], atol=1e-5, rtol=0)


def test_attention_layer_fully_masked_gradients_finite():
    attn = MaskedMultiheadAttention(8, 2)
    q = torch.randn(2, 3, 8, requires_grad=True)
    k = torch.randn(2, 4, 8, requires_grad=True)
    mask = torch.zeros(2, 4, dtype=torch.bool)
    for want in (False, True):
        out, _ = attn(q, k, key_mask=mask, return_attention=want)
        out.sum().backward()
        assert torch.isfinite(q.grad).all() and torch.isfinite(k.grad).all()
        assert (k.grad == 0).all()


@pytest.mark.parametrize('norm_first', [False, True])
def test_attention_block_self_attention(norm_first):
    block = AttentionBlock(16, 4, norm_first=norm_first).eval()
    x = torch.randn(2, 5, 16)
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    with torch.no_grad():
        a, _ = block(x, key_mask=mask)
        b, w = block(x, key_mask=mask, return_attention=True)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    assert w.shape == (2, 4, 5, 5) and (w[1, ..., 2:] == 0).all()


def test_sine_encoding_still_importable_from_cross_attention():
    assert old_import is sine_position_encoding_2d
    assert sine_position_encoding_2d(3, 4, 8).shape == (12, 8)


# ------------------------------------------------------------ the blocks
@pytest.mark.parametrize('num_layers', [1, 2])
@pytest.mark.parametrize('key', list(BLOCKS))
def test_explicit_path_matches_sdpa(key, num_layers):
    block = build(key, num_layers).eval()
    image, text = feats(*inputs())
    with torch.no_grad():
        fast = block(image, text)
        explicit = block(image, text, return_attention=True)
    assert fast.attention is None
    assert fast.pooled.shape == (2, 8) == (2, block.out_dim)
    assert fast.map.shape == (2, 8, H, W)
    torch.testing.assert_close(explicit.pooled, fast.pooled, atol=1e-5,
                               rtol=0)
    torch.testing.assert_close(explicit.map, fast.map, atol=1e-5, rtol=0)
    attn = explicit.attention
    assert attn.shape == (2, HEADS, L, H * W)
    assert (attn >= 0).all()
    real = inputs()[2]  # (B, L) real text tokens
    if key.startswith('i2t'):
        # Image positions attend over the real text tokens (columns here).
        for i in range(2):
            torch.testing.assert_close(attn[i][:, real[i]].sum(-2),
                                       torch.ones(HEADS, H * W))
            assert (attn[i][:, ~real[i]] == 0).all()
    elif key.startswith('single'):
        # A slice of the joint self-attention: the rest goes to CLS + text.
        assert (attn.sum(-1) <= 1 + 1e-5).all()
        assert (attn.sum(-1) > 0).all()
    else:
        torch.testing.assert_close(attn.sum(-1), torch.ones(2, HEADS, L))


def test_single_stream_full_attention_masks_padding():
    """The full self-attention of the last layer: rows sum to 1 over valid
    keys, zero at text padding (captured from the layer itself)."""
    block = build('single', 2).eval()
    img, tokens, mask = inputs()
    captured = {}
    attn_mod = block.layers[-1].attn

    def hook(module, args, kwargs, output):
        captured['w'] = output[1]

    handle = attn_mod.register_forward_hook(hook, with_kwargs=True)
    with torch.no_grad():
        block(*feats(img, tokens, mask), return_attention=True)
    handle.remove()
    w = captured['w']  # (B, heads, 1 + L + N, 1 + L + N)
    torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:3]))
    key_valid = torch.cat((torch.ones(2, 1, dtype=torch.bool), mask,
                           torch.ones(2, H * W, dtype=torch.bool)), 1)
    assert (w.transpose(1, 3)[~key_valid] == 0).all()


@pytest.mark.parametrize('key', list(BLOCKS))
def test_padded_text_changes_nothing(key):
    block = build(key, 2).eval()
    img, tokens, mask = inputs(lengths=(4, 2))
    g = torch.Generator().manual_seed(1)
    noisy = tokens + torch.randn(tokens.shape, generator=g) * ~mask[..., None]
    longer = F.pad(noisy, (0, 0, 0, 3), value=5.0)
    longer_mask = F.pad(mask, (0, 3))
    with torch.no_grad():
        ref = block(*feats(img, tokens, mask), return_attention=True)
        out = block(*feats(img, longer, longer_mask), return_attention=True)
        other = block(*feats(img, tokens.flip(1), mask))
    torch.testing.assert_close(out.pooled, ref.pooled, atol=1e-6, rtol=0)
    torch.testing.assert_close(out.map, ref.map, atol=1e-6, rtol=0)
    for i, n in enumerate((4, 2)):
        torch.testing.assert_close(out.attention[i, :, :n],
                                   ref.attention[i, :, :n], atol=1e-6,
                                   rtol=0)
    # ... but the real tokens do matter.
    assert not torch.allclose(other.pooled, ref.pooled, atol=1e-4)


@pytest.mark.parametrize('key', ['t2i', 'i2t', 'co', 'single'])
def test_mirrored_image_changes_output(key):
    """2D position encodings make the blocks see where things are."""
    block = build(key).eval()
    img, tokens, mask = inputs()
    with torch.no_grad():
        a = block(*feats(img, tokens, mask))
        b = block(*feats(img.flip(-1), tokens, mask))
    assert not torch.allclose(a.pooled, b.pooled, atol=1e-5)


def test_single_stream_position_encodings_break_symmetry(monkeypatch):
    """Without the 2D encoding the joint self-attention is a set operation:
    the mirrored image gives the same pooled output."""
    block = build('single').eval()
    img, tokens, mask = inputs()
    mirrored = img.flip(-1)
    with torch.no_grad():
        a = block(*feats(img, tokens, mask)).pooled
        b = block(*feats(mirrored, tokens, mask)).pooled
    assert not torch.allclose(a, b, atol=1e-5)
    import mmfusion.models.fusions.single_stream_fusion as mod
    monkeypatch.setattr(
        mod, 'sine_position_encoding_2d',
        lambda h, w, d, device, dtype: torch.zeros(h * w, d, dtype=dtype))
    with torch.no_grad():
        a = block(*feats(img, tokens, mask)).pooled
        b = block(*feats(mirrored, tokens, mask)).pooled
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


@pytest.mark.parametrize('modality', ['text', 'image'])
@pytest.mark.parametrize('key', list(BLOCKS))
def test_all_absent_is_finite(key, modality):
    block = build(key, 2).train()
    img, tokens, mask = inputs(3, lengths=(6, 3, 1))
    img.requires_grad_(True)
    tokens.requires_grad_(True)
    absent = torch.zeros(3, dtype=torch.bool)
    kwargs = {f'{modality}_present': absent}
    for want in (False, True):
        out = block(*feats(img, tokens, mask, **kwargs),
                    return_attention=want)
        assert torch.isfinite(out.pooled).all()
        assert torch.isfinite(out.map).all()
        if want:
            assert torch.isfinite(out.attention).all()
        (out.pooled.sum() + out.map.sum()).backward()
        for t in (img, tokens):
            assert t.grad is None or torch.isfinite(t.grad).all()
        for p in block.parameters():
            assert p.grad is None or torch.isfinite(p.grad).all()
        block.zero_grad()


@pytest.mark.parametrize('key', list(BLOCKS))
def test_absent_text_contributes_nothing(key):
    """With the text absent, pooled does not depend on the (zeroed) text
    features nor on the mask the encoder gives."""
    block = build(key, 2).eval()
    img, tokens, mask = inputs()
    absent = torch.zeros(2, dtype=torch.bool)
    with torch.no_grad():
        a = block(*feats(img, tokens, mask, text_present=absent))
        b = block(*feats(img, tokens, torch.ones_like(mask),
                         text_present=absent), return_attention=True)
    torch.testing.assert_close(a.pooled, b.pooled, atol=1e-6, rtol=0)
    if key.startswith('i2t'):
        assert (b.attention == 0).all()


@pytest.mark.parametrize('key', ['t2i', 'co', 'single'])
def test_absent_image_contributes_nothing(key):
    """With the image absent, pooled is the same whatever the image holds
    (the blocks where text does not need the image positions as carriers).
    """
    block = build(key, 2).eval()
    img, tokens, mask = inputs()
    absent = torch.zeros(2, dtype=torch.bool)
    image = ModalityFeatures.from_map(img, absent)  # non-zero on purpose
    zeros = ModalityFeatures.from_map(torch.zeros_like(img), absent)
    _, text = feats(img, tokens, mask)
    with torch.no_grad():
        a = block(image, text, return_attention=True)
        b = block(zeros, text)
    torch.testing.assert_close(a.pooled, b.pooled, atol=1e-6, rtol=0)
    assert (a.attention == 0).all()


def test_t2i_default_matches_explicit_direction():
    a, b = build('t2i').eval(), build('t2i', direction='text_to_image')
    image, text = feats(*inputs())
    with torch.no_grad():
        torch.testing.assert_close(a(image, text).pooled,
                                   b.eval()(image, text).pooled)


def test_bad_arguments():
    with pytest.raises(ValueError, match='direction'):
        build('t2i', direction='both')
    with pytest.raises(ValueError, match='pooling'):
        build('i2t', pooling='median')
    with pytest.raises(ValueError, match='embed_dims'):
        build('co', embed_dims=18, num_heads=3)
    with pytest.raises(ValueError, match='divisible'):
        build('single', embed_dims=20, num_heads=3)
    block = build('single', max_length=4)
    with pytest.raises(ValueError, match='max_length'):
        block(*feats(*inputs()))


def test_classes_exported():
    for cls in (CrossAttentionFusion, CoAttentionFusion, SingleStreamFusion):
        assert MODELS.get(cls.__name__) is cls


def test_cross_attention_loads_old_checkpoints():
    block = build('t2i', 2).eval()
    old = {k.replace('.attn.', '.'): v for k, v in block.state_dict().items()}
    assert 'layers.1.q_proj.weight' in old
    fresh = build('t2i', 2, init_cfg=None)
    torch.nn.init.zeros_(fresh.layers[1].attn.q_proj.weight)
    fresh.load_state_dict(old)
    torch.testing.assert_close(fresh.layers[1].attn.q_proj.weight,
                               block.layers[1].attn.q_proj.weight)
