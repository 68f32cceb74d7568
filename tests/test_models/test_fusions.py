"""Contract tests run on every registered fusion block, plus block specifics.

Blocks are discovered from the registry, so a new block is covered without
editing this file. Each is built with only ``image_dim`` and ``text_dim``.
"""
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope

from mmfusion.models.fusions import (MAP, VECTOR, BaseFusion,
                                     CrossAttentionFusion, FiLMFusion,
                                     check_input_kind)
from mmfusion.registry import MODELS
from mmfusion.structures import ModalityFeatures

IMAGE_DIM, TEXT_DIM, H, W, L = 16, 12, 4, 5, 6


def fusion_names():
    MODELS.import_from_location()
    return sorted(name for name, cls in MODELS.module_dict.items()
                  if isinstance(cls, type) and issubclass(cls, BaseFusion))


def build(name, **kwargs):
    init_default_scope('mmfusion')
    return MODELS.build(dict(type=name, image_dim=IMAGE_DIM,
                             text_dim=TEXT_DIM, **kwargs))


def make_inputs(block, b, lengths=None, grad=False, seed=0):
    """Image (map if the block accepts it, else vector) and text features."""
    g = torch.Generator().manual_seed(seed)
    lengths = lengths or [L - i for i in range(b)]
    mask = torch.arange(L)[None] < torch.tensor(lengths)[:, None]
    tokens = torch.randn(b, L, TEXT_DIM, generator=g) * mask[..., None]
    pooled = torch.randn(b, TEXT_DIM, generator=g)
    if MAP in block.input_kinds:
        img = torch.randn(b, IMAGE_DIM, H, W, generator=g)
    else:
        img = torch.randn(b, IMAGE_DIM, generator=g)
    for t in (img, tokens, pooled):
        t.requires_grad_(grad)
    return img, tokens, mask, pooled


def features(block, img, tokens, mask, pooled, image_present=None,
             text_present=None):
    b = img.shape[0]
    ones = torch.ones(b, dtype=torch.bool)
    image_present = ones if image_present is None else image_present
    text_present = ones if text_present is None else text_present
    if img.dim() == 4:
        image = ModalityFeatures.from_map(img, image_present)
    else:
        image = ModalityFeatures(pooled=img, present=image_present)
    text = ModalityFeatures(tokens=tokens, mask=mask & text_present[:, None],
                            pooled=pooled, present=text_present)
    return image, text


def test_blocks_are_discovered():
    assert {'ConcatFusion', 'FiLMFusion',
            'CrossAttentionFusion'} <= set(fusion_names())
    assert {'SumFusion', 'MeanFusion', 'WeightedFusion', 'GatedFusion',
            'BilinearFusion', 'TensorFusion', 'LowRankFusion',
            'LateFusion'} <= set(fusion_names())


@pytest.mark.parametrize('name', fusion_names())
@pytest.mark.parametrize('b', [1, 2])
def test_output_shape(name, b):
    block = build(name).train()
    out = block(*features(block, *make_inputs(block, b)))
    assert out.pooled.shape == (b, block.out_dim)
    if out.map is not None:
        assert out.map.shape[:2] == (b, block.map_dim)
    assert torch.isfinite(out.pooled).all()


@pytest.mark.parametrize('kind', ['residual', 'plain'])
@pytest.mark.parametrize('b', [1, 2])
def test_film_strided_max_mean(b, kind):
    block = build('FiLMFusion', strides=(2, 1), num_blocks=2, channels=8,
                  block=kind, modulate_input=True,
                  out_dim=6, pooling=('max', 'mean', 'argmax'),
                  text_to_output=True).train()
    out = block(*features(block, *make_inputs(block, b)))
    assert out.pooled.shape == (b, 24 + block.text_dim) == (b, block.out_dim)
    assert out.map.shape == (b, 6, (H + 1) // 2, (W + 1) // 2)


def test_film_pools_chosen_blocks_and_input():
    block = build('FiLMFusion', strides=(2, 1), num_blocks=2, channels=8,
                  block='plain', modulate_input=True, out_dim=6,
                  pooling=('max', ), pool_blocks=(0, ), pool_input=True,
                  block_pooling=('mean', )).eval()
    # 6 (output max) + IMAGE_DIM (input mean) + 8 (block 0 mean).
    assert block.out_dim == 6 + 8 + IMAGE_DIM
    img, tokens, mask, pooled = make_inputs(block, 2)
    out = block(*features(block, img, tokens, mask, pooled))
    assert out.pooled.shape == (2, block.out_dim)
    # The input's statistic is the mean of the FiLMed input map.
    params = block.film_generator(pooled)
    g0, b0 = params[:, :IMAGE_DIM], params[:, IMAGE_DIM:2 * IMAGE_DIM]
    x = torch.relu(img * (1 + g0[:, :, None, None]) + b0[:, :, None, None])
    torch.testing.assert_close(out.pooled[:, 6:6 + IMAGE_DIM],
                               x.mean(dim=(2, 3)))
    with pytest.raises(ValueError, match='pool_blocks'):
        build('FiLMFusion', num_blocks=2, pool_blocks=(2, ))


def test_film_object_counts_extend_pooled():
    block = build('FiLMFusion', num_blocks=1, channels=8, out_dim=6,
                  pooling=('max', ), object_counts=3).eval()
    assert block.out_dim == 6 + 4
    out = block(*features(block, *make_inputs(block, 2)))
    assert out.pooled.shape == (2, 10) and torch.isfinite(out.pooled).all()


def test_film_objects_described_by_finer_maps():
    block = build('FiLMFusion', num_blocks=2, channels=8, out_dim=6,
                  strides=(2, 1), pooling=('max', ), object_counts=3,
                  block='plain', count_maps=['input', 0, 'output'],
                  count_hidden=5).train()
    # Descriptions: IMAGE_DIM (input) + 8 (block 0) + 6 (output) channels.
    assert [e.in_channels for e in block.object_counts.embed] == \
        [IMAGE_DIM, 8, 6]
    img, tokens, mask, pooled = make_inputs(block, 2, grad=True)
    out = block(*features(block, img, tokens, mask, pooled))
    assert out.pooled.shape == (2, block.out_dim)
    # The counts (after the 6 max-pooled channels) reach block 0's conv.
    out.pooled[:, 6:9].sum().backward()
    assert block.blocks[0].conv.weight.grad.abs().sum() > 0
    moments = build('FiLMFusion', num_blocks=1, channels=8, out_dim=6,
                    object_counts=3, count_hidden=4, count_moments=True,
                    count_query=True)
    out = moments(*features(moments, *make_inputs(moments, 2)))
    assert torch.isfinite(out.pooled).all()
    for bad in (['output', 2], ['middle'], []):
        with pytest.raises(ValueError, match='count_maps'):
            build('FiLMFusion', num_blocks=2, object_counts=3,
                  count_maps=bad)


def test_film_object_counts_on_the_pixels():
    block = build('FiLMFusion', num_blocks=1, channels=8, out_dim=6,
                  pooling=('max', ), object_counts=3, count_hidden=4,
                  count_moments=True, count_query=True,
                  count_source='pixels', count_proposals='background',
                  count_maps=['pixels', 'output'])
    assert block.object_counts.fg is None
    assert [e.in_channels for e in block.object_counts.embed] == [3, 6]
    img, tokens, mask, pooled = make_inputs(block, 2, grad=True)
    image, text = features(block, img, tokens, mask, pooled)[:2]
    with pytest.raises(ValueError, match='ModalityFeatures.pixels'):
        block(image, text)
    pixels = torch.full((2, 3, 32, 32), -2.0)
    pixels[:, :, 4:9, 4:9] = 2.0
    pixels[1, :, 20:24, 20:30] = 1.0
    image.pixels = pixels
    out = block(image, text)
    assert out.pooled.shape == (2, block.out_dim)
    # The object total (last count) is the number of objects in each image.
    total = out.pooled[:, 6 + 3]
    torch.testing.assert_close(total, torch.tensor([1.0, 2.0]), atol=1e-2,
                               rtol=0)
    with pytest.raises(ValueError, match='count_source'):
        build('FiLMFusion', object_counts=3, count_source='image')


@pytest.mark.parametrize('grad', [True, False])
def test_film_count_query_grad_decides_whether_counts_train_the_text(grad):
    block = build('FiLMFusion', num_blocks=1, channels=8, out_dim=6,
                  pooling=('max', ), object_counts=3, count_hidden=4,
                  count_query=True, count_query_grad=grad,
                  count_maps=['input']).train()
    img, tokens, mask, pooled = make_inputs(block, 2, grad=True)
    out = block(*features(block, img, tokens, mask, pooled))
    # Only the counts (after the 6 max-pooled channels), described by the
    # unmodulated input map: the query is their one path to the text.
    out.pooled[:, 6:9].sum().backward()
    reached = pooled.grad is not None and pooled.grad.abs().sum() > 0
    assert reached == grad


@pytest.mark.parametrize('name', fusion_names())
def test_gradients_reach_both_modalities(name):
    block = build(name).train()
    img, tokens, mask, pooled = make_inputs(block, 2, grad=True)
    out = block(*features(block, img, tokens, mask, pooled))
    loss = out.pooled.pow(2).sum()
    if out.map is not None:
        loss = loss + out.map.pow(2).mean()
    loss.backward()
    assert img.grad is not None and img.grad.abs().sum() > 0
    text_grad = sum(t.grad.abs().sum() for t in (tokens, pooled)
                    if t.grad is not None)
    assert text_grad > 0


@pytest.mark.parametrize('name', fusion_names())
def test_padding_tokens_change_nothing(name):
    block = build(name).eval()
    img, tokens, mask, pooled = make_inputs(block, 2, lengths=[4, 2])
    g = torch.Generator().manual_seed(1)
    # Garbage at padded positions, and extra padded positions.
    noisy = tokens + torch.randn(tokens.shape, generator=g) * ~mask[..., None]
    longer = F.pad(noisy, (0, 0, 0, 3), value=5.0)
    longer_mask = F.pad(mask, (0, 3))
    with torch.no_grad():
        ref = block(*features(block, img, tokens, mask, pooled))
        out = block(*features(block, img, longer, longer_mask, pooled))
    torch.testing.assert_close(out.pooled, ref.pooled, atol=1e-6, rtol=0)
    if ref.map is not None:
        torch.testing.assert_close(out.map, ref.map, atol=1e-6, rtol=0)


@pytest.mark.parametrize('name', fusion_names())
def test_absent_modality_is_finite(name):
    block = build(name).train()
    img, tokens, mask, pooled = make_inputs(block, 3)
    image_present = torch.tensor([False, True, True])
    text_present = torch.tensor([True, False, True])
    # Absent samples carry zero features.
    img = (img * image_present.view(-1, *[1] * (img.dim() - 1))).detach()
    tokens = (tokens * text_present[:, None, None]).detach()
    pooled = (pooled * text_present[:, None]).detach()
    for t in (img, tokens, pooled):
        t.requires_grad_(True)
    out = block(*features(block, img, tokens, mask, pooled, image_present,
                          text_present))
    assert torch.isfinite(out.pooled).all()
    if out.map is not None:
        assert torch.isfinite(out.map).all()
    loss = out.pooled.sum() + (out.map.sum() if out.map is not None else 0)
    loss.backward()
    for t in (img, tokens, pooled):
        assert t.grad is None or torch.isfinite(t.grad).all()
    for p in block.parameters():
        assert p.grad is None or torch.isfinite(p.grad).all()


@pytest.mark.parametrize('num_layers', [1, 2])
def test_cross_attention_explicit_path_matches_sdpa(num_layers):
    block = build('CrossAttentionFusion', embed_dims=16, num_heads=4,
                  num_layers=num_layers).eval()
    img, tokens, mask, pooled = make_inputs(block, 2, lengths=[6, 3])
    feats = features(block, img, tokens, mask, pooled)
    with torch.no_grad():
        fast = block(*feats)
        explicit = block(*feats, return_attention=True)
    assert fast.attention is None
    torch.testing.assert_close(explicit.pooled, fast.pooled, atol=1e-5,
                               rtol=0)
    torch.testing.assert_close(explicit.map, fast.map, atol=1e-5, rtol=0)
    attn = explicit.attention
    assert attn.shape == (2, 4, L, H * W)
    torch.testing.assert_close(attn.sum(-1), torch.ones(2, 4, L))


def test_cross_attention_all_text_absent():
    block = build('CrossAttentionFusion').eval()
    img, tokens, mask, pooled = make_inputs(block, 2)
    absent = torch.zeros(2, dtype=torch.bool)
    with torch.no_grad():
        out = block(*features(block, img, tokens * 0, mask, pooled * 0,
                              text_present=absent), return_attention=True)
    assert torch.isfinite(out.pooled).all() and torch.isfinite(out.map).all()
    # No text: the pooled output is the same for any image.
    assert torch.allclose(out.pooled[0], out.pooled[1])


def test_cross_attention_position_encoding_breaks_symmetry():
    # Two images that are mirror images of each other: without position
    # encoding the attended result is identical (attention is a set op).
    img, tokens, mask, pooled = make_inputs(build('CrossAttentionFusion'), 1)
    mirrored = img.flip(-1)
    for pos_embed, same in ((False, True), (True, False)):
        torch.manual_seed(0)
        block = build('CrossAttentionFusion', pos_embed=pos_embed).eval()
        with torch.no_grad():
            a = block(*features(block, img, tokens, mask, pooled)).pooled
            b = block(*features(block, mirrored, tokens, mask, pooled)).pooled
        assert torch.allclose(a, b, atol=1e-5) == same


def test_film_absent_text_is_identity_modulation():
    block = build('FiLMFusion').eval()
    img, tokens, mask, pooled = make_inputs(block, 2)
    absent = torch.zeros(2, dtype=torch.bool)
    with torch.no_grad():
        a = block(*features(block, img, tokens, mask, pooled,
                            text_present=absent))
        # Zeroing the generator gives gamma = beta = 0 for every sample.
        torch.nn.init.zeros_(block.film_generator.weight)
        torch.nn.init.zeros_(block.film_generator.bias)
        b = block(*features(block, img, tokens, mask, pooled))
    torch.testing.assert_close(a.pooled, b.pooled)


def test_concat_vector_and_map_paths():
    block = build('ConcatFusion', out_dim=8, hidden_dims=(10,))
    img, tokens, mask, pooled = make_inputs(block, 2)
    out_map = block(*features(block, img, tokens, mask, pooled))
    out_vec = block(*features(block, img.mean((2, 3)), tokens, mask, pooled))
    assert out_map.map.shape == (2, 8, H, W) and out_vec.map is None
    assert out_vec.pooled.shape == (2, 8)


def test_check_input_kind_names_fitting_blocks():
    check_input_kind('FiLMFusion', FiLMFusion, MAP)
    with pytest.raises(ValueError) as err:
        check_input_kind('FiLMFusion', FiLMFusion, VECTOR)
    assert 'ConcatFusion' in str(err.value)
    assert 'CrossAttentionFusion' not in str(err.value)
    with pytest.raises(ValueError, match='CrossAttentionFusion'):
        check_input_kind('X', type('X', (BaseFusion,), {}), MAP)
    assert MAP in CrossAttentionFusion.input_kinds


def test_film_count_attend_appends_object_centroids():
    block = build('FiLMFusion', num_blocks=1, channels=8, out_dim=6,
                  pooling=('max', ), object_counts=3, count_hidden=4,
                  count_query=True, count_source='pixels',
                  count_proposals='background', count_maps=['pixels'],
                  count_attend=2)
    assert block.out_dim == 6 + 3 + 1 + 2 * 2
    img, tokens, mask, pooled = make_inputs(block, 2, grad=True)
    image, text = features(block, img, tokens, mask, pooled)[:2]
    pixels = torch.full((2, 3, 32, 32), -2.0)
    pixels[:, :, 4:9, 4:9] = 2.0
    image.pixels = pixels
    out = block(image, text)
    # One object: every attention reads its centre, (6 / 31) * 2 - 1.
    centre = 6 / 31 * 2 - 1
    torch.testing.assert_close(out.pooled[:, -4:],
                               torch.full((2, 4), centre), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match='object_counts'):
        build('FiLMFusion', count_attend=2)


def _scene(b=2):
    """``(b, 3, 32, 32)`` normalised pixels: a plain background, sample 0
    with two objects, the others with three, and a stray 2-pixel speck."""
    pixels = torch.full((b, 3, 32, 32), -2.0)
    pixels[:, 0, 4:10, 4:10] = 2.0  # red-ish square, top left
    pixels[:, 2, 20:28, 22:26] = 1.5  # blue-ish bar, bottom right
    pixels[1:, 1, 2:5, 24:30] = 1.0  # a third object in sample 1
    pixels[:, :, 15, 15:17] = 0.0  # the speck (mass 2 < min_mass 4)
    return pixels


def test_object_tokens_describe_each_object():
    from mmfusion.models.utils.object_tokens import ObjectTokens
    tok = ObjectTokens(map_dim=2).eval()
    pixels = _scene()
    fmap = torch.zeros(2, 2, 8, 8)
    fmap[:, 1] = 3.0
    tokens, mask, slots = tok(pixels, fmap)
    assert tokens.shape == (2, 3, tok.out_dim)
    assert tok.out_dim == 3 + 13 + 2 + 2  # colour, moments, centroid, map
    assert mask.tolist() == [[True, True, False], [True, True, True]]
    assert not tokens[0, 2].any()  # padding slot
    # Colours: each object's mean pixel, one of the three drawn.
    colours = {tuple(c.tolist()) for c in tokens[1, :, :3]}
    assert colours == {(2.0, -2.0, -2.0), (-2.0, -2.0, 1.5),
                       (-2.0, 1.0, -2.0)}
    # Centroid (x, y) in [-1, 1]: the square's centre is pixel (6.5, 6.5).
    sq = [i for i in range(3) if tokens[0, i, 0] == 2.0][0]
    centre = -1 + 2 * 6.5 / 31
    torch.testing.assert_close(tokens[0, sq, 16:18],
                               torch.tensor([centre, centre]))
    torch.testing.assert_close(tokens[0, sq, 18:], torch.tensor([0.0, 3.0]))
    # Slots paint the square's pixels with its token index, the speck and
    # the background with -1.
    assert (slots[0, 4:10, 4:10] == sq).all()
    assert slots[0, 15, 15] == -1 and slots[0, 0, 0] == -1
    with pytest.raises(ValueError, match='map_dim'):
        tok(pixels)


def test_object_tokens_train_with_one_object():
    from mmfusion.models.utils.object_tokens import ObjectTokens
    pixels = torch.full((1, 3, 16, 16), -2.0)
    pixels[0, 0, 2:6, 2:6] = 2.0
    tokens, mask, _ = ObjectTokens().train()(pixels)
    assert mask.tolist() == [[True]] and torch.isfinite(tokens).all()
    # No object at all: one padded slot, no real token.
    tokens, mask, _ = ObjectTokens().train()(torch.zeros(2, 3, 16, 16))
    assert tokens.shape[:2] == (2, 1) and not mask.any()


def _object_block(**kwargs):
    torch.manual_seed(0)
    return build('CrossAttentionFusion', embed_dims=16, num_heads=4,
                 num_layers=2, image_tokens='objects', null_key=True,
                 **kwargs)


def _fast_and_explicit(block):
    """The block on :func:`_scene`: its inputs and its outputs without and
    with the explicit attention path (which must agree)."""
    img, tokens, mask, pooled = make_inputs(block, 2, lengths=[6, 3])
    image, text = features(block, img, tokens, mask, pooled)
    with pytest.raises(ValueError, match='ModalityFeatures.pixels'):
        block(image, text)
    image.pixels = _scene()
    with torch.no_grad():
        fast = block(image, text)
        explicit = block(image, text, return_attention=True)
    torch.testing.assert_close(explicit.pooled, fast.pooled, atol=1e-5,
                               rtol=0)
    assert fast.map.shape == (2, block.out_dim, H, W)
    return image, text, tokens, mask, fast, explicit


def test_cross_attention_over_objects():
    block = _object_block().eval()
    image, text, tokens, mask, fast, explicit = _fast_and_explicit(block)
    # Weights over the objects painted onto the H x W map: each query's
    # weights sum to what the objects (not the null key) received.
    attn = explicit.attention
    assert attn.shape == (2, 4, L, H * W)
    assert (attn >= 0).all() and (attn.sum(-1) < 1).all()
    assert (attn.sum(-1) > 0).all()
    # The object tokens carry the image: moving an object changes the
    # output; the map (unchanged) alone does not decide it.
    moved = image.pixels.clone()
    moved[:, :, 4:10, 4:10] = -2.0
    moved[:, 0, 4:10, 14:20] = 2.0
    image.pixels = moved
    with torch.no_grad():
        other = block(image, text)
    assert not torch.allclose(other.pooled, fast.pooled, atol=1e-4)


def test_cross_attention_objects_gradients_and_absent_image():
    block = _object_block().train()
    img, tokens, mask, pooled = make_inputs(block, 3, grad=True)
    present = torch.tensor([False, True, True])
    image, text = features(block, img, tokens, mask, pooled,
                           image_present=present)
    image.pixels = torch.cat([_scene(), _scene(1)]) * present[:, None,
                                                              None, None]
    out = block(image, text)
    assert torch.isfinite(out.pooled).all()
    out.pooled.pow(2).sum().backward()
    # The map reaches the keys through each object's mean (map_features).
    assert img.grad is not None and img.grad.abs().sum() > 0
    assert tokens.grad.abs().sum() > 0 and block.null.grad.abs().sum() > 0
    for p in block.parameters():
        assert p.grad is None or torch.isfinite(p.grad).all()


@pytest.mark.parametrize('pooling', ['sum', 'mean', 'max'])
def test_cross_attention_objects_read_the_text(pooling):
    # image_to_text: each object attends to the question, then the objects
    # are pooled; the null key (among the text keys) is allowed too.
    block = _object_block(direction='image_to_text', pooling=pooling).eval()
    image, text, tokens, mask, fast, explicit = _fast_and_explicit(block)
    assert explicit.attention.shape == (2, 4, L, H * W)
    # Padded text tokens get no weight from any object.
    assert explicit.attention[1, :, 3:].abs().max() == 0
    if pooling == 'sum':
        # A third object adds to the sum: sample 1 differs from sample 0
        # with the same text.
        text.tokens = tokens[:1].expand(2, -1, -1)
        text.mask = mask[:1].expand(2, -1)
        with torch.no_grad():
            out = block(image, text).pooled
        assert not torch.allclose(out[0], out[1], atol=1e-4)


def test_cross_attention_objects_options_are_checked():
    with pytest.raises(ValueError, match='pooling'):
        _object_block(pooling='median')
    with pytest.raises(ValueError, match='map_features'):
        _object_block(objects=dict(min_mas=4))
    with pytest.raises(ValueError, match='image_tokens'):
        build('CrossAttentionFusion', objects=dict(min_mass=4))
    with pytest.raises(ValueError, match='image_tokens'):
        build('CrossAttentionFusion', image_tokens='regions')
    # Without map features the hand-made description alone is projected.
    block = _object_block(objects=dict(map_features=False))
    assert block.objects.map_dim == 0


@pytest.mark.parametrize('null_key', [False, True])
def test_cross_attention_null_key_makes_counts_visible(null_key):
    # One square against two identical ones (position not described): a
    # softmax over the objects alone averages equal values, so only the
    # null key's share can tell the images apart.
    torch.manual_seed(0)
    block = build('CrossAttentionFusion', embed_dims=16, num_heads=4,
                  image_tokens='objects', null_key=null_key,
                  objects=dict(map_features=False, centroid=False)).eval()
    img, tokens, mask, pooled = make_inputs(block, 2)
    pixels = torch.full((2, 3, 32, 32), -2.0)
    pixels[:, 0, 4:10, 4:10] = 2.0
    pixels[1, 0, 20:26, 20:26] = 2.0
    image, text = features(block, img, tokens, mask, pooled)
    image.pixels = pixels
    text.tokens = tokens[:1].expand(2, -1, -1)
    text.mask = mask[:1].expand(2, -1)
    with torch.no_grad():
        out = block(image, text).pooled
    assert torch.allclose(out[0], out[1], atol=1e-5) != null_key


def test_cross_attention_text_norm_and_text_query():
    block = _object_block(direction='image_to_text', pooling='sum',
                          text_norm=True, text_query=True).train()
    img, tokens, mask, pooled = make_inputs(block, 2, grad=True)
    image, text = features(block, img, tokens, mask, pooled)
    image.pixels = _scene()
    out = block(image, text)
    out.pooled.sum().backward()
    # The pooled text vector reaches the output through text_query.
    assert pooled.grad.abs().sum() > 0
    assert block.text_norm.weight.grad.abs().sum() > 0
    # Absent text adds no query vector, whatever its pooled features hold.
    absent = torch.zeros(2, dtype=torch.bool)
    block.eval()
    outs = []
    for scale in (0.0, 3.0):
        image2, text2 = features(block, img.detach(), tokens.detach(), mask,
                                 pooled.detach() * scale,
                                 text_present=absent)
        image2.pixels = _scene()
        with torch.no_grad():
            outs.append(block(image2, text2).pooled)
    torch.testing.assert_close(outs[0], outs[1])


def test_fusion_output_map_is_computed_on_first_read():
    from mmfusion.models.fusions import FusionOutput
    calls = []

    def make():
        calls.append(1)
        return torch.ones(1, 2, 3, 3)

    out = FusionOutput(pooled=torch.zeros(1, 2), map=make)
    assert calls == [] and 'lazy' in repr(out)
    assert out.map.shape == (1, 2, 3, 3) and out.map.shape == (1, 2, 3, 3)
    assert calls == [1]
    out.map = None
    assert out.map is None
