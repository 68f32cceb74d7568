"""Per-block checks of the vector-level fusion blocks.

Sum, mean, weighted, gated and bilinear fusion also run on maps (the same
computation per position); tensor, low-rank and late fusion take pooled
vectors only. The shared contract (shapes, gradients, padding, absent
modalities) is in ``test_fusions.py``.
"""
from pathlib import Path

import pytest
import torch
from mmengine.registry import init_default_scope
from omegaconf import OmegaConf

from mmfusion.config import package_config_dir
from mmfusion.models.fusions import (MAP, VECTOR, BilinearFusion,
                                     GatedFusion, LateFusion, LowRankFusion,
                                     MeanFusion, SumFusion, TensorFusion,
                                     WeightedFusion, check_input_kind)
from mmfusion.registry import MODELS
from mmfusion.structures import ModalityFeatures

DI, DT, H, W = 6, 5, 3, 4
PER_POSITION = ['SumFusion', 'MeanFusion', 'WeightedFusion', 'GatedFusion',
                'BilinearFusion']
VECTOR_ONLY = ['TensorFusion', 'LowRankFusion', 'LateFusion']
CONFIGS = {'sum': 'SumFusion', 'mean': 'MeanFusion',
           'weighted': 'WeightedFusion', 'gated': 'GatedFusion',
           'bilinear': 'BilinearFusion', 'tensor': 'TensorFusion',
           'low_rank': 'LowRankFusion', 'late': 'LateFusion'}


def build(name, **kwargs):
    init_default_scope('mmfusion')
    torch.manual_seed(0)
    kwargs.setdefault('out_dim', 7)
    return MODELS.build(dict(type=name, image_dim=DI, text_dim=DT,
                             **kwargs)).eval()


def vectors(b=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, DI, generator=g), torch.randn(b, DT, generator=g)


def feats(img, txt, image_present=None, text_present=None):
    """ModalityFeatures with absent samples zeroed, as encoders give them."""
    b = img.shape[0]
    ip = torch.ones(b, dtype=torch.bool) if image_present is None \
        else torch.as_tensor(image_present)
    tp = torch.ones(b, dtype=torch.bool) if text_present is None \
        else torch.as_tensor(text_present)
    img = img * ip.view(-1, *[1] * (img.dim() - 1))
    txt = txt * tp[:, None]
    image = (ModalityFeatures.from_map(img, ip) if img.dim() == 4 else
             ModalityFeatures(pooled=img, present=ip))
    return image, ModalityFeatures(pooled=txt, present=tp)


def run(block, img, txt, image_present=None, text_present=None):
    with torch.no_grad():
        return block(*feats(img, txt, image_present, text_present))


def cross_terms(block, seed=0):
    """``f(i1, t1) + f(i2, t2) - f(i1, t2) - f(i2, t1)``: zero iff additive
    on these inputs."""
    (i1, i2), (t1, t2) = (x.split(1) for x in vectors(2, seed))
    f = lambda i, t: run(block, i, t).pooled  # noqa: E731
    return f(i1, t1) + f(i2, t2) - f(i1, t2) - f(i2, t1)


# ---------------------------------------------------------------- discovery
def test_exported_registered_and_kinds():
    per_position = [SumFusion, MeanFusion, WeightedFusion, GatedFusion,
                    BilinearFusion]
    vector_only = [TensorFusion, LowRankFusion, LateFusion]
    assert [c.__name__ for c in per_position] == PER_POSITION
    assert [c.__name__ for c in vector_only] == VECTOR_ONLY
    for cls in per_position + vector_only:
        assert MODELS.get(cls.__name__) is cls
        assert cls.input_kinds == ({VECTOR, MAP} if cls in per_position
                                   else {VECTOR}), cls


@pytest.mark.parametrize('name', VECTOR_ONLY)
def test_vector_only_blocks_refuse_maps(name):
    cls = MODELS.get(name)
    check_input_kind(name, cls, VECTOR)
    with pytest.raises(ValueError) as err:
        check_input_kind(name, cls, MAP)
    msg = str(err.value)
    assert f'`{name}`' in msg
    fits = msg.split('Blocks that accept `map`:')[1]
    for ok in PER_POSITION + ['ConcatFusion', 'FiLMFusion']:
        assert ok in fits
    for bad in VECTOR_ONLY:
        assert bad not in fits
    # Fed a map anyway, the block says so instead of fusing garbage.
    block = build(name)
    img, txt = vectors(2)
    with pytest.raises(ValueError, match="fusion_input='vector'"):
        block(*feats(img[:, :, None, None].expand(-1, -1, H, W), txt))


@pytest.mark.parametrize('option,name', sorted(CONFIGS.items()))
def test_config_defaults_build_and_run(option, name):
    """Each YAML's defaults on the default encoders' sizes (32-channel
    32 x 32 maps from SmallCNN, 128-dim GRU vectors)."""
    path = Path(package_config_dir()) / 'model' / 'fusion' / f'{option}.yaml'
    cfg = OmegaConf.to_container(OmegaConf.load(path))
    assert cfg['type'] == name
    assert path.read_text().startswith('#')  # says what the block does
    init_default_scope('mmfusion')
    block = MODELS.build(dict(cfg, image_dim=32, text_dim=128)).eval()
    img = torch.randn(2, 32, 32, 32)
    if MAP not in block.input_kinds:
        img = img.mean((2, 3))
    with torch.no_grad():
        out = block(*feats(img, torch.randn(2, 128)))
    assert out.pooled.shape == (2, block.out_dim)
    assert torch.isfinite(out.pooled).all()
    if MAP in block.input_kinds:
        assert out.map.shape == (2, block.out_dim, 32, 32)


# ------------------------------------------------- map = vector per position
@pytest.mark.parametrize('name', PER_POSITION)
def test_map_path_is_vector_path_per_position(name):
    block = build(name)
    if name == 'WeightedFusion':
        with torch.no_grad():  # unequal weights
            block.modality_logits.copy_(torch.tensor([0.7, -0.4]))
    g = torch.Generator().manual_seed(3)
    img = torch.randn(4, DI, H, W, generator=g)
    txt = torch.randn(4, DT, generator=g)
    ip, tp = [True, False, True, False], [True, True, False, False]
    out = run(block, img, txt, ip, tp)
    assert out.map.shape == (4, 7, H, W)
    torch.testing.assert_close(out.pooled, out.map.mean((2, 3)))
    for y in range(H):
        for x in range(W):
            vec = run(block, img[:, :, y, x], txt, ip, tp)
            assert vec.map is None
            torch.testing.assert_close(out.map[:, :, y, x], vec.pooled,
                                       atol=1e-6, rtol=1e-5)


# --------------------------------------------------------------------- sum
def test_sum_is_relu_of_summed_projections():
    block = build('SumFusion')
    img, txt = vectors(4)
    out = run(block, img, txt, text_present=[True, False, True, True],
              image_present=[True, True, False, True]).pooled
    pi, pt = block.image_proj(img), block.text_proj(txt)
    expected = torch.stack([(pi[0] + pt[0]).relu(), pi[1].relu(),
                            pt[2].relu(), (pi[3] + pt[3]).relu()])
    torch.testing.assert_close(out, expected.detach())
    none = run(block, img, txt, [False] * 4, [False] * 4).pooled
    assert (none == 0).all()


# -------------------------------------------------------------------- mean
def test_mean_averages_present_modalities():
    block = build('MeanFusion')
    img, txt = vectors(4)
    out = run(block, img, txt, image_present=[True, True, False, False],
              text_present=[True, False, True, False]).pooled
    with torch.no_grad():
        pi, pt = block.image_proj(img), block.text_proj(txt)
    torch.testing.assert_close(out[0], ((pi[0] + pt[0]) / 2).relu())
    # Text absent: exactly the image projection alone (and vice versa).
    torch.testing.assert_close(out[1], pi[1].relu())
    torch.testing.assert_close(out[2], pt[2].relu())
    assert (out[3] == 0).all()


# ---------------------------------------------------------------- weighted
def test_weighted_weights_sum_to_one_over_present():
    block = build('WeightedFusion')
    with torch.no_grad():
        block.modality_logits.copy_(torch.tensor([1.0, -0.5]))
    ip = torch.tensor([True, True, False, False])
    tp = torch.tensor([True, False, True, False])
    w = block.modality_weights(ip, tp)
    assert w.shape == (4, 2) and (w >= 0).all()
    torch.testing.assert_close(w[:3].sum(-1), torch.ones(3))
    torch.testing.assert_close(w[0], torch.softmax(block.modality_logits, 0))
    torch.testing.assert_close(w[1], torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(w[2], torch.tensor([0.0, 1.0]))
    assert (w[3] == 0).all()

    img, txt = vectors(4)
    out = run(block, img, txt, ip, tp).pooled
    with torch.no_grad():
        pi, pt = block.image_proj(img), block.text_proj(txt)
    torch.testing.assert_close(out[0], (w[0, 0] * pi[0] +
                                        w[0, 1] * pt[0]).relu().detach())
    torch.testing.assert_close(out[1], pi[1].relu())
    assert (out[3] == 0).all()


def test_weighted_starts_as_mean_and_learns_weights():
    weighted, mean = build('WeightedFusion'), build('MeanFusion')
    mean.load_state_dict(weighted.state_dict(), strict=False)
    img, txt = vectors(3)
    torch.testing.assert_close(run(weighted, img, txt).pooled,
                               run(mean, img, txt).pooled)
    weighted.train()
    weighted(*feats(img, txt)).pooled.sum().backward()
    grad = weighted.modality_logits.grad
    assert grad is not None and grad.abs().sum() > 0


# ------------------------------------------------------------------- gated
def test_gmu_matches_formula_and_gate_in_unit_interval():
    block = build('GatedFusion')
    img, txt = vectors(5)
    image, text = feats(img, txt)
    with torch.no_grad():
        z = block.gate(image, text)
        out = block(image, text).pooled
        h_i = torch.tanh(block.image_proj(img))
        h_t = torch.tanh(block.text_proj(txt))
        z_ref = torch.sigmoid(torch.cat((img, txt), -1) @ torch.cat(
            (block.gate_image.weight, block.gate_text.weight), 1).T +
            block.gate_image.bias)
    assert z.shape == (5, 7)
    assert ((z > 0) & (z < 1)).all()
    torch.testing.assert_close(z, z_ref)
    torch.testing.assert_close(out, z * h_i + (1 - z) * h_t)


def test_gmu_gates_to_the_present_modality():
    block = build('GatedFusion')
    img, txt = vectors(3)
    ip, tp = [True, False, False], [False, True, False]
    image, text = feats(img, txt, ip, tp)
    with torch.no_grad():
        z = block.gate(image, text)
        out = block(image, text).pooled
        only_img = torch.tanh(block.image_proj(img[0]))
        only_txt = torch.tanh(block.text_proj(txt[1]))
    assert (z[0] == 1).all() and (z[1] == 0).all()
    torch.testing.assert_close(out[0], only_img)
    torch.testing.assert_close(out[1], only_txt)
    assert (out[2] == 0).all()


def test_gmu_with_output_layer():
    block = build('GatedFusion', hidden_dim=4, out_dim=9)
    img, txt = vectors(2)
    image, text = feats(img, txt)
    assert block.gate(image, text).shape == (2, 4)
    out = run(block, img, txt)
    assert out.pooled.shape == (2, 9) and (out.pooled >= 0).all()
    gate_map = block.gate(*feats(torch.randn(2, DI, H, W), txt))
    assert gate_map.shape == (2, 4, H, W)


# ---------------------------------------------------------------- bilinear
def test_bilinear_matches_formula_and_interacts():
    block = build('BilinearFusion', rank=8)
    img, txt = vectors(4)
    out = run(block, img, txt, text_present=[True, False, True, False],
              image_present=[True, True, False, False]).pooled
    with torch.no_grad():
        u, v = torch.tanh(block.image_proj(img)), torch.tanh(
            block.text_proj(txt))
        ref = block.out_proj(u * v).relu()
        torch.testing.assert_close(out[0], ref[0])
        # An absent modality's factor is 1: the present one passes alone.
        torch.testing.assert_close(out[1], block.out_proj(u[1]).relu())
        torch.testing.assert_close(out[2], block.out_proj(v[2]).relu())
        torch.testing.assert_close(out[3], block.out_proj.bias.relu())
    # Multiplicative: not additive in the modalities.
    assert cross_terms(block).abs().max() > 1e-3


# ------------------------------------------------------------------ tensor
def test_tensor_fusion_outer_product_holds_unimodal_terms():
    block = build('TensorFusion', proj_dim=4, hidden_dims=(6,))
    assert block.tensor_dim == 25
    img, txt = vectors(3)
    image, text = feats(img, txt, text_present=[True, False, True])
    with torch.no_grad():
        t = block.fusion_tensor(image, text)
        z_i, z_t = block.image_proj(img), block.text_proj(txt)
    assert t.shape == (3, 25)
    t = t.view(3, 5, 5)
    # The appended 1s: the constant, both unimodal vectors and the products.
    torch.testing.assert_close(t[:, 4, 4], torch.ones(3))
    torch.testing.assert_close(t[:, :4, 4], z_i)
    torch.testing.assert_close(t[[0, 2], 4, :4], z_t[[0, 2]])
    torch.testing.assert_close(t[[0, 2], :4, :4],
                               z_i[[0, 2], :, None] * z_t[[0, 2], None])
    # Text absent: only its 1 is left, so just the image's terms remain.
    assert (t[1, :, :4] == 0).all()
    torch.testing.assert_close(t[1, :4, 4], z_i[1])
    out = run(block, img, txt)
    assert out.pooled.shape == (3, 7) and out.map is None


# ---------------------------------------------------------------- low rank
def test_low_rank_matches_explicit_computation():
    block = build('LowRankFusion', rank=3)
    with torch.no_grad():
        block.bias.normal_()
    img, txt = vectors(4)
    ip, tp = [True, True, False, True], [True, False, True, True]
    out = run(block, img, txt, ip, tp).pooled
    ones = torch.ones(4, 1)
    zi = torch.cat((img * torch.tensor(ip)[:, None], ones), -1)
    zt = torch.cat((txt * torch.tensor(tp)[:, None], ones), -1)
    with torch.no_grad():
        ref = block.bias.expand(4, -1).clone()
        for r in range(3):
            ref += (block.rank_weights[r] * (zi @ block.image_factor[r]) *
                    (zt @ block.text_factor[r]))
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
        # The same as a tensor-fusion weight of rank 3 on the outer product.
        full = torch.einsum('r,rao,rco->aco', block.rank_weights,
                            block.image_factor, block.text_factor)
        outer = zi[:, :, None] * zt[:, None, :]
        torch.testing.assert_close(
            out, torch.einsum('bac,aco->bo', outer, full) + block.bias,
            atol=1e-5, rtol=1e-5)


def test_low_rank_is_not_additive():
    assert cross_terms(build('LowRankFusion')).abs().max() > 1e-3


# -------------------------------------------------------------------- late
@pytest.mark.parametrize('hidden_dims', [(), (8, )])
def test_late_fusion_has_no_interaction(hidden_dims):
    block = build('LateFusion', hidden_dims=hidden_dims)
    for seed in range(3):
        torch.testing.assert_close(cross_terms(block, seed),
                                   torch.zeros(1, 7), atol=1e-6, rtol=0)
    # While a block with interaction fails the same check.
    assert cross_terms(build('ConcatFusion', hidden_dims=(8, ))).abs().max() \
        > 1e-3


def test_late_fusion_averages_present_branches():
    block = build('LateFusion', hidden_dims=(8, ))
    img, txt = vectors(4)
    out = run(block, img, txt, image_present=[True, True, False, False],
              text_present=[True, False, True, False]).pooled
    with torch.no_grad():
        gi, gt = block.image_mlp(img), block.text_mlp(txt)
    torch.testing.assert_close(out[0], (gi[0] + gt[0]) / 2)
    torch.testing.assert_close(out[1], gi[1])
    torch.testing.assert_close(out[2], gt[2])
    assert (out[3] == 0).all()


@pytest.mark.parametrize('name', ['SumFusion', 'MeanFusion',
                                  'WeightedFusion'])
def test_additive_blocks_are_additive_before_relu(name, monkeypatch):
    """Sum/mean/weighted fuse additively up to the final ReLU: with the
    ReLU made the identity the cross terms vanish (and with it they do
    not, so the check can fail)."""
    block = build(name)
    assert cross_terms(block).abs().max() > 1e-3
    monkeypatch.setattr(torch, 'relu', lambda x: x)
    assert cross_terms(block).abs().max() < 1e-5
