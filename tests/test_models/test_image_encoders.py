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


@pytest.mark.parametrize('dilations,extent', [(None, 5), ((1, 2), 7),
                                              ((1, 4), 11)])
def test_dilations_widen_receptive_field(dilations, extent):
    # Two stride-1 3x3 stages: the receptive field is 1 + 2 * (1 + d2).
    torch.manual_seed(0)
    cnn = build(channels=(4, 4), strides=(1, 1), dilations=dilations,
                coord_conv=False, norm=False).eval()
    with torch.no_grad():
        for stage in cnn.stages:
            stage.layers[0].weight.abs_()
            stage.layers[0].bias.fill_(1.0)
    x = torch.rand(1, 3, 24, 24, requires_grad=True)
    out = cnn(x)[0]
    assert out.shape == (1, 4, 24, 24)
    out[0, :, 12, 12].sum().backward()
    rows = x.grad[0].abs().sum(dim=(0, 2)).nonzero().flatten()
    assert rows.max() - rows.min() + 1 == extent


def test_bad_dilations():
    with pytest.raises(ValueError, match='dilations'):
        build(channels=(8, 16), strides=(2, 1), dilations=(1,))
    with pytest.raises(ValueError, match='dilations'):
        build(channels=(8,), strides=(1,), dilations=(0,))


@pytest.mark.parametrize('kernel,stride,dilation,bias', [
    (3, 1, 1, True), (3, 2, 1, False), (3, 1, 2, False), (1, 1, 1, True)])
def test_coord_conv2d_is_conv_of_appended_coords(kernel, stride, dilation,
                                                 bias):
    from mmfusion.models.image_encoders import append_coords, coord_conv2d
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(5 + 2, 4, kernel, stride=stride,
                           padding=dilation * (kernel // 2),
                           dilation=dilation, bias=bias)
    x = torch.randn(3, 5, 9, 11, requires_grad=True)
    want = conv(append_coords(x))
    got = coord_conv2d(conv, x)
    assert got.shape == want.shape
    assert torch.allclose(got, want, atol=1e-5)
    (g_want, ) = torch.autograd.grad(want.square().sum(), conv.weight)
    (g_got, ) = torch.autograd.grad(got.square().sum(), conv.weight)
    assert torch.allclose(g_got, g_want, atol=1e-4)
