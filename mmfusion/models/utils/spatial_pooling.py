"""Summaries of a feature map: max, mean, soft-argmax coordinates, peaks."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

STATS = ('max', 'mean', 'argmax', 'peak')


class SpatialPooling(nn.Module):
    """Pool ``(B, C, H, W)`` to ``(B, D)`` by concatenating statistics.

    - ``max``: ``C`` values, where a channel fires most (finds a referent);
    - ``mean``: ``C`` values, how much it fires overall (counts);
    - ``argmax``: ``2C`` values, the soft-argmax ``(x, y)`` in [-1, 1] of
      each channel (softmax over positions with a learnt temperature): where
      the thing the channel found is, so a head can compare two objects'
      positions (Levine et al. 2016's spatial soft-argmax);
    - ``peak``: ``C`` values, the mean of each channel kept only where it is
      a local maximum of its 3 x 3 neighbourhood (zero elsewhere): a blob
      that peaks once counts once whatever its area, which ``mean`` cannot
      do. Measured on the shapes classifier, it did not lift counting
      (README, "What moved the numbers").

    Args:
        stats: which statistics, in this order in the output.
        channels: ``C``.
    """

    def __init__(self, stats: Sequence[str], channels: int) -> None:
        super().__init__()
        stats = tuple(stats)
        bad = [s for s in stats if s not in STATS]
        if bad or not stats:
            raise ValueError(f'pooling statistics must be a non-empty subset '
                             f'of {STATS}, got {stats}')
        self.stats = stats
        self.channels = channels
        if 'argmax' in stats:
            self.log_temperature = nn.Parameter(torch.zeros(1))

    @property
    def out_dim(self) -> int:
        return sum(2 * self.channels if s == 'argmax' else self.channels
                   for s in self.stats)

    def forward(self, x: Tensor) -> Tensor:
        out = []
        for stat in self.stats:
            if stat == 'max':
                out.append(x.amax(dim=(2, 3)))
            elif stat == 'mean':
                out.append(x.mean(dim=(2, 3)))
            elif stat == 'peak':
                local = nn.functional.max_pool2d(x, 3, stride=1, padding=1)
                # The mask has no gradient: it flows to the peaks' values.
                out.append((x * (x >= local)).mean(dim=(2, 3)))
            else:
                b, c, h, w = x.shape
                weights = torch.softmax(
                    x.flatten(2) * self.log_temperature.exp(), dim=-1)
                ys = torch.linspace(-1, 1, h, device=x.device, dtype=x.dtype)
                xs = torch.linspace(-1, 1, w, device=x.device, dtype=x.dtype)
                grid_y = ys.view(h, 1).expand(h, w).reshape(-1)
                grid_x = xs.view(1, w).expand(h, w).reshape(-1)
                out.append((weights * grid_x).sum(-1))
                out.append((weights * grid_y).sum(-1))
        return torch.cat(out, dim=1)
