"""Connected-component labelling and the soft object counts built on it."""
import pytest
import torch

from mmfusion.models.utils.object_counts import (ObjectCounts,
                                                 connected_components)


def test_components_are_four_connected_and_labelled_once():
    m = torch.zeros(1, 8, 8, dtype=torch.bool)
    m[0, 1:3, 1:3] = True          # a square
    m[0, 5:8, 4:7] = True          # a bigger square
    m[0, 0, 7] = True              # one pixel
    m[0, 4, 0] = m[0, 5, 1] = True  # diagonal neighbours: two components
    m[0, 3:5, 3] = m[0, 4, 2] = True  # an L-shape touching nothing
    labels = connected_components(m)
    assert (labels[~m] == 0).all() and (labels[m] > 0).all()
    assert len(labels[m].unique()) == 6
    assert labels[0, 1, 1] == labels[0, 2, 2] == 2 * 8 + 2 + 1
    assert labels[0, 4, 0] != labels[0, 5, 1]


def test_counts_do_not_depend_on_object_size():
    oc = ObjectCounts(fine_dim=1, score_dim=1, channels=1, min_mass=1e-3)
    with torch.no_grad():
        oc.fg.weight.fill_(20.0)
        oc.fg.bias.fill_(-10.0)    # foreground where the input is 1
        oc.embed[0].weight.fill_(20.0)
        oc.embed[0].bias.fill_(-10.0)  # score ~1 where the score map is 1
    small = torch.zeros(1, 1, 16, 16)
    small[..., 1:3, 1:3] = 1
    small[..., 8:10, 8:10] = 1
    large = torch.zeros(1, 1, 16, 16)
    large[..., 1:7, 1:7] = 1
    large[..., 9:15, 8:14] = 1
    for img in (small, large):
        out = oc(img, img)
        torch.testing.assert_close(out, torch.tensor([[2.0, 2.0]]),
                                   atol=1e-3, rtol=0)
    # Only objects whose score is high count in the first output.
    score = small.clone()
    score[..., 8:10, 8:10] = 0
    torch.testing.assert_close(oc(small, score), torch.tensor([[1.0, 2.0]]),
                               atol=1e-3, rtol=0)


def test_gradients_reach_score_map_and_foreground():
    oc = ObjectCounts(fine_dim=3, score_dim=5, channels=4)
    fine = torch.randn(2, 3, 16, 16, requires_grad=True)
    score = torch.randn(2, 5, 4, 4, requires_grad=True)
    out = oc(fine, score)
    assert out.shape == (2, oc.out_dim) == (2, 5)
    out[:, :4].sum().backward()
    assert score.grad.abs().sum() > 0 and fine.grad.abs().sum() > 0


def reference_counts(oc: ObjectCounts, fine, score_map):
    """One sample at a time, per-pixel linear score then per-object mean
    (the definition for ``hidden=0``)."""
    out = []
    for i in range(fine.shape[0]):
        fg = torch.sigmoid(oc.fg(fine[i:i + 1]))[0, 0]
        labels = connected_components((fg > 0.5)[None])[0]
        score = torch.nn.functional.interpolate(
            oc.embed[0](score_map[i:i + 1]), size=fg.shape, mode='bilinear',
            align_corners=False)[0]
        counts = torch.zeros(oc.channels)
        total = torch.zeros(())
        for lab in labels.unique():
            if lab == 0:
                continue
            sel = labels == lab
            w = fg[sel]
            mean = (score[:, sel] * w).sum(-1) / w.sum()
            present = torch.tanh(w.sum() / oc.min_mass)
            counts = counts + torch.sigmoid(mean) * present
            total = total + present
        out.append(torch.cat([counts, total[None]]))
    return torch.stack(out)


def test_batched_counts_equal_the_per_sample_definition():
    torch.manual_seed(0)
    oc = ObjectCounts(fine_dim=3, score_dim=5, channels=4)
    fine = torch.randn(3, 3, 12, 12)
    score_map = torch.randn(3, 5, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(oc(fine, score_map),
                                   reference_counts(oc, fine, score_map),
                                   atol=1e-5, rtol=1e-5)
        # Two maps: the sum of their terms, each at its own resolution.
        two = ObjectCounts(fine_dim=3, score_dim=[2, 3], channels=4)
        two.fg.load_state_dict(oc.fg.state_dict())
        two.embed[0].weight.copy_(oc.embed[0].weight[:, :2])
        two.embed[0].bias.copy_(oc.embed[0].bias)
        two.embed[1].weight.copy_(oc.embed[0].weight[:, 2:])
        torch.testing.assert_close(two(fine, [score_map[:, :2],
                                              score_map[:, 2:]]),
                                   oc(fine, score_map), atol=1e-5, rtol=1e-5)


def test_mlp_scores_are_a_nonlinear_function_of_the_description():
    torch.manual_seed(0)
    oc = ObjectCounts(fine_dim=2, score_dim=[1, 2], channels=2, hidden=8)
    assert [e.out_channels for e in oc.embed] == [8, 8]
    fine = torch.randn(2, 2, 10, 10)
    maps = [torch.randn(2, 1, 5, 5, requires_grad=True),
            torch.randn(2, 2, 10, 10, requires_grad=True)]
    out = oc(fine, maps)
    assert out.shape == (2, 3) and torch.isfinite(out).all()
    out[:, :2].sum().backward()
    assert all(m.grad.abs().sum() > 0 for m in maps)
    assert oc.head[1].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='hidden'):
        ObjectCounts(1, 1, hidden=-1)


def test_checkpoints_with_the_old_score_conv_load():
    oc = ObjectCounts(fine_dim=2, score_dim=3, channels=4)
    old = {'fg.weight': oc.fg.weight.detach() + 1, 'fg.bias': oc.fg.bias,
           'score.weight': torch.ones(4, 3, 1, 1),
           'score.bias': torch.zeros(4)}
    oc.load_state_dict(old)  # strict: every key placed
    assert (oc.embed[0].weight == 1).all() and (oc.embed[0].bias == 0).all()


def _moments_of(mask):
    from mmfusion.models.utils.object_counts import _normalised_moments
    b, h, w = mask.shape
    weight = mask.float().flatten(1)
    labels = connected_components(mask).flatten(1)
    key = labels + torch.arange(b)[:, None] * (h * w + 1)
    uniq, inv = torch.unique(key, return_inverse=True)
    inv = inv.flatten()
    mass = weight.new_zeros(len(uniq)).index_add(0, inv, weight.flatten())
    return _normalised_moments(weight, inv, len(uniq), h, w, mass)[1:]


def test_moments_tell_shapes_apart_whatever_their_place_and_size():
    import numpy as np
    yy, xx = np.mgrid[:40, :40]

    def shape(kind, cx, cy, r):
        dx, dy = xx - cx, yy - cy
        m = {'circle': dx ** 2 + dy ** 2 <= r * r,
             'square': (abs(dx) <= r) & (abs(dy) <= r),
             'diamond': abs(dx) + abs(dy) <= r,
             'triangle': (dy <= r) & (dy >= -r) &
                         (abs(dx) <= (dy + r) / 2)}[kind]
        return torch.from_numpy(m)[None]

    kinds = ('circle', 'square', 'diamond', 'triangle')
    small = torch.cat([_moments_of(shape(k, 10, 12, 6)) for k in kinds])
    moved = torch.cat([_moments_of(shape(k, 25, 22, 6)) for k in kinds])
    large = torch.cat([_moments_of(shape(k, 20, 20, 12)) for k in kinds])
    # Translation: identical shape descriptors (the last column is mass).
    torch.testing.assert_close(small, moved, atol=1e-4, rtol=1e-4)
    # Scale: each shape stays nearer itself than any other shape.
    d = torch.cdist(small[:, :-1], large[:, :-1])
    assert (d.argmin(1) == torch.arange(4)).all(), d
    assert large[0, -1] > small[0, -1]


def test_moments_and_query_enter_the_scores():
    torch.manual_seed(0)
    oc = ObjectCounts(fine_dim=1, score_dim=1, channels=2, hidden=4,
                      moments=True, query_dim=3, min_mass=1e-3)
    fine = torch.zeros(2, 1, 12, 12)
    fine[:, :, 2:5, 2:5] = 1
    fine[:, :, 7:11, 6:8] = 1
    with torch.no_grad():
        oc.fg.weight.fill_(20.0)
        oc.fg.bias.fill_(-10.0)
    q = torch.randn(2, 3, requires_grad=True)
    out = oc(fine, torch.zeros(2, 1, 12, 12), q)
    # Same image, different queries: different counts, same object number.
    assert not torch.allclose(out[0, :2], out[1, :2])
    torch.testing.assert_close(out[:, 2], torch.full((2, ), 2.0),
                               atol=1e-3, rtol=0)
    out[:, :2].sum().backward()
    assert q.grad.abs().sum() > 0 and oc.moments[1].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='query'):
        oc(fine, torch.zeros(2, 1, 12, 12))
    with pytest.raises(ValueError, match='moments need'):
        ObjectCounts(1, 1, moments=True)


def test_background_proposals_find_objects_on_a_plain_background():
    from mmfusion.models.utils.object_counts import background_foreground

    img = torch.full((2, 3, 16, 16), -2.0)  # a dark background
    img[0, 0, 2:5, 2:5] = 2.0               # a red square
    img[0, 1, 9:14, 8:12] = 1.0             # a green rectangle
    img[1, :, 6:8, 6:8] = -1.0              # a grey square (dim, but > 0.5)
    fg = background_foreground(img, 0.5)
    assert fg[0].sum() == 9 + 20 and fg[1].sum() == 4
    oc = ObjectCounts(fine_dim=3, score_dim=3, channels=1, min_mass=1e-3,
                      proposals='background')
    assert oc.fg is None
    with torch.no_grad():
        oc.embed[0].weight.zero_()
        oc.embed[0].weight[0, 0] = 20.0     # score ~1 for red objects
        oc.embed[0].bias.fill_(-10.0)
    out = oc(img, img)
    torch.testing.assert_close(out, torch.tensor([[1.0, 2.0], [0.0, 1.0]]),
                               atol=1e-3, rtol=0)
    # Absent images (zeros) have no objects and give finite counts.
    assert oc(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 16)).eq(
        0).all()
    with pytest.raises(ValueError, match='proposals'):
        ObjectCounts(3, 3, proposals='boxes')


def test_attention_reads_out_the_centroid_of_the_object_it_picks():
    img = torch.full((2, 3, 17, 17), -2.0)
    img[:, 0, 2:5, 1:4] = 2.0              # a red square, centre (2, 3)
    img[0, 2, 10:15, 12:15] = 2.0          # a blue box, centre (13, 12)
    oc = ObjectCounts(fine_dim=3, score_dim=3, channels=1, min_mass=1e-3,
                      proposals='background', attend=1)
    assert oc.out_dim == 1 + 1 + 2
    assert oc.embed[0].out_channels == 2   # a count and an attention logit

    def read(colour: int) -> torch.Tensor:
        with torch.no_grad():
            oc.embed[0].weight.zero_()
            oc.embed[0].bias.zero_()
            oc.embed[0].weight[1, colour] = 20.0  # attend to this colour
        return oc(img, img)[:, 2:]

    # Centroids in [-1, 1]: pixel c of 17 is c / 8 - 1.
    torch.testing.assert_close(read(0), torch.tensor(
        [[2 / 8 - 1, 3 / 8 - 1]] * 2), atol=1e-4, rtol=0)
    # The second image has no blue object: all its attention stays on red.
    torch.testing.assert_close(read(2), torch.tensor(
        [[13 / 8 - 1, 12 / 8 - 1], [2 / 8 - 1, 3 / 8 - 1]]), atol=1e-4,
        rtol=0)
    # The logits train: a loss on the read-out reaches the scorer.
    oc.zero_grad()
    oc(img, img)[:, 2].sum().backward()
    assert oc.embed[0].weight.grad[1].abs().sum() > 0
    # No objects: zeros, finite.
    empty = torch.zeros(1, 3, 17, 17)
    assert oc(empty, empty).eq(0).all()
    with pytest.raises(ValueError, match='attend'):
        ObjectCounts(3, 3, attend=-1)


def test_attention_reads_out_the_picked_objects_description():
    img = torch.full((1, 3, 17, 17), -2.0)
    img[0, 0, 2:5, 1:4] = 2.0              # red: (2, -2, -2)
    img[0, 2, 10:15, 12:15] = 1.0          # blue: (-2, -2, 1)
    oc = ObjectCounts(fine_dim=3, score_dim=3, channels=1, min_mass=1e-3,
                      proposals='background', attend=1, attend_features=True)
    assert oc.out_dim == 1 + 1 + (2 + 3)
    with torch.no_grad():
        oc.embed[0].weight.zero_()
        oc.embed[0].bias.zero_()
        oc.embed[0].weight[1, 2] = 20.0     # attend to the blue object
    out = oc(img, img)
    # Its centroid (x, y), then its mean colour.
    torch.testing.assert_close(out[0, 4:], torch.tensor([-2.0, -2.0, 1.0]),
                               atol=1e-4, rtol=0)
    torch.testing.assert_close(out[0, 2:4], torch.tensor(
        [13 / 8 - 1, 12 / 8 - 1]), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match='attend_features'):
        ObjectCounts(3, 3, attend_features=True)
    # With moments, their standardised values are read out too.
    assert ObjectCounts(3, 3, hidden=4, query_dim=2, moments=True, attend=2,
                        attend_features=True).out_dim == 16 + 1 + 2 * (
                            2 + 3 + 13)


def test_counts_and_attention_run_under_bfloat16_autocast():
    """``--amp`` on the CPU: the scorer runs in bfloat16, the sums over
    objects in float32."""
    img = torch.full((2, 3, 16, 16), -2.0)
    img[:, 0, 2:6, 2:6] = 2.0
    img[1, 1, 9:13, 9:13] = 2.0
    oc = ObjectCounts(fine_dim=3, score_dim=3, channels=4, hidden=8,
                      moments=True, query_dim=5, proposals='background',
                      attend=2, attend_features=True)
    query = torch.randn(2, 5)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = oc(img, [img], query)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    torch.testing.assert_close(out[:, 4], torch.tensor([1.0, 2.0]),
                               atol=1e-2, rtol=0)
