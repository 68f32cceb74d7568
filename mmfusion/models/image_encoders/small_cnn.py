"""A small convolutional image encoder for synthetic-scale images."""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn
from torch.nn import functional as F

from mmfusion.registry import MODELS


def coord_channels(x: Tensor) -> Tensor:
    """``(B, 2, H, W)`` x and y coordinates of ``x``'s positions in [-1, 1].

    Channel 0 varies along the width (left -1, right 1), channel 1 along the
    height (top -1, bottom 1); a size of 1 gives 0.
    """
    b, _, h, w = x.shape
    ys = torch.linspace(-1.0, 1.0, h, device=x.device, dtype=x.dtype) \
        if h > 1 else torch.zeros(1, device=x.device, dtype=x.dtype)
    xs = torch.linspace(-1.0, 1.0, w, device=x.device, dtype=x.dtype) \
        if w > 1 else torch.zeros(1, device=x.device, dtype=x.dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing='ij')
    return torch.stack((grid_x, grid_y)).unsqueeze(0).expand(b, -1, -1, -1)


def append_coords(x: Tensor) -> Tensor:
    """``(B, C, H, W)`` -> ``(B, C + 2, H, W)`` with :func:`coord_channels`."""
    return torch.cat((x, coord_channels(x)), dim=1)


def coord_conv2d(conv: nn.Conv2d, x: Tensor) -> Tensor:
    """``conv(append_coords(x))``, with the same weights (``conv`` takes
    ``C + 2`` input channels, the last two for the coordinates), without
    building the ``(B, C + 2, H, W)`` input.

    The coordinate channels are the same for every sample, so their share
    of the convolution is computed once at batch 1 and broadcast over the
    batch; the image share then runs on ``C`` channels (a copy of the whole
    input and a channel count that is no multiple of 8 saved).
    """
    c = x.shape[1]
    weight = conv.weight
    args = (conv.stride, conv.padding, conv.dilation)
    y = F.conv2d(x, weight[:, :c], conv.bias, *args)
    return y + F.conv2d(coord_channels(x[:1]), weight[:, c:], None, *args)


class _Stage(nn.Module):
    """``convs`` x (conv3x3 [+ BN] + ReLU); the first conv has the stride."""

    def __init__(self, in_channels: int, out_channels: int, stride: int,
                 convs: int, norm: bool, coord_conv: bool,
                 dilation: int = 1) -> None:
        super().__init__()
        self.coord_conv = coord_conv
        layers: List[nn.Module] = []
        c_in = in_channels + (2 if coord_conv else 0)
        for i in range(convs):
            layers.append(nn.Conv2d(c_in, out_channels, 3,
                                    stride=stride if i == 0 else 1,
                                    padding=dilation, dilation=dilation,
                                    bias=not norm))
            if norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.ReLU(inplace=True))
            c_in = out_channels
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if not self.coord_conv:
            return self.layers(x)
        x = coord_conv2d(self.layers[0], x)
        for layer in self.layers[1:]:
            x = layer(x)
        return x


@MODELS.register_module()
class SmallCNN(BaseModule):
    """Stages of (conv3x3 + BN + ReLU), downsampling by strided convs.

    With ``coord_conv`` every stage sees two extra input channels holding
    the normalised x/y position (CoordConv, Liu et al. 2018): questions about
    where things are need it, plain convolutions are translation-invariant.

    Args:
        in_channels: channels of the input image.
        channels: output channels of each stage.
        strides: stride of each stage's first conv.
        convs_per_stage: conv layers per stage.
        coord_conv: append coordinate channels to each stage's input.
        out_indices: stages whose outputs are returned (negative indices
            count from the end).
        norm: use BatchNorm after each conv (convs then have no bias).
        init_cfg: mmengine weight-initialisation config.

    Forward: ``(B, in_channels, H, W)`` -> a tuple with one ``(B,
    channels[i], H_i, W_i)`` map per index in ``out_indices``, in stage
    order, like mmdet backbones. Stages after the last returned one are not
    built.
    """

    def __init__(self, in_channels: int = 3,
                 channels: Sequence[int] = (32, 64, 64, 64),
                 strides: Sequence[int] = (2, 2, 1, 1),
                 convs_per_stage: int = 1, coord_conv: bool = True,
                 out_indices: Sequence[int] = (-1,), norm: bool = True,
                 dilations: Optional[Sequence[int]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(channels) != len(strides):
            raise ValueError(f'channels has {len(channels)} stages but '
                             f'strides has {len(strides)}')
        if not channels:
            raise ValueError('SmallCNN needs at least one stage')
        if convs_per_stage < 1:
            raise ValueError('convs_per_stage must be >= 1')
        num_stages = len(channels)
        indices = []
        for i in out_indices:
            if not -num_stages <= i < num_stages:
                raise ValueError(f'out index {i} is out of range for '
                                 f'{num_stages} stages')
            indices.append(i % num_stages)
        if len(set(indices)) != len(indices):
            raise ValueError(f'out_indices {tuple(out_indices)} repeat a '
                             'stage')
        self.out_indices: Tuple[int, ...] = tuple(sorted(indices))
        self.stages = nn.ModuleList()
        c_in = in_channels
        # Stages after the last returned one would be unused parameters
        # (which distributed training rejects), so they are not built.
        last = self.out_indices[-1]
        dilations = tuple(dilations) if dilations is not None else (
            (1, ) * num_stages)
        if len(dilations) != num_stages or min(dilations) < 1:
            raise ValueError(f'dilations {dilations} must give one value '
                             f'>= 1 per stage ({num_stages} stages)')
        for c_out, stride, dil in zip(channels[:last + 1], strides[:last + 1],
                                      dilations[:last + 1]):
            self.stages.append(_Stage(c_in, c_out, stride, convs_per_stage,
                                      norm, coord_conv, dil))
            c_in = c_out
        self.out_channels: Tuple[int, ...] = tuple(
            channels[i] for i in self.out_indices)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
