import pytest
import torch
from mmengine.registry import init_default_scope

from mmfusion.registry import MODELS


def build(**kwargs):
    init_default_scope('mmfusion')
    return MODELS.build(dict(type='SmallCNN', **kwargs))


def test_default_shapes():
    cnn = build()
    outs = cnn(torch.rand(2, 3, 32, 48))
    assert isinstance(outs, tuple) and len(outs) == 1
    assert outs[0].shape == (2, 64, 8, 12)
    assert cnn.out_channels == (64,)


@pytest.mark.parametrize('coord_conv', [True, False])
def test_out_indices(coord_conv):
    cnn = build(channels=(8, 16, 24), strides=(2, 2, 2), out_indices=(0, -1),
                convs_per_stage=2, coord_conv=coord_conv, norm=False)
    outs = cnn(torch.rand(1, 3, 32, 32))
    assert [tuple(o.shape) for o in outs] == [(1, 8, 16, 16), (1, 24, 4, 4)]
    assert cnn.out_channels == (8, 24)


def test_unused_stages_not_built():
    cnn = build(channels=(8, 16, 24), strides=(2, 1, 1), out_indices=(1,))
    assert len(cnn.stages) == 2
    assert cnn(torch.rand(1, 3, 16, 16))[0].shape == (1, 16, 8, 8)


def test_coord_conv_sees_position():
    # A constant image gives different features at different places only
    # when coordinates are appended.
    x = torch.ones(1, 3, 16, 16)
    with_coords = build(channels=(4,), strides=(1,)).eval()(x)[0]
    plain = build(channels=(4,), strides=(1,), coord_conv=False).eval()(x)[0]
    centre = plain[..., 4:12, 4:12]
    assert torch.allclose(centre, centre[..., :1, :1].expand_as(centre))
    inner = with_coords[..., 4:12, 4:12]
    assert not torch.allclose(inner, inner[..., :1, :1].expand_as(inner))


def test_bad_args():
    with pytest.raises(ValueError, match='strides'):
        build(channels=(8, 16), strides=(2,))
    with pytest.raises(ValueError, match='out index'):
        build(channels=(8,), strides=(1,), out_indices=(3,))
