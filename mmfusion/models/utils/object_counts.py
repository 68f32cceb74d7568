"""Soft object counts from connected components of a learnt foreground."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def connected_components(mask: Tensor, max_iters: int = 0) -> Tensor:
    """Label the 4-connected components of a binary mask.

    Each foreground pixel starts with its own id (1 + its raster index) and
    repeatedly takes the largest id among itself and its four neighbours
    inside the mask, until nothing changes: every component ends labelled by
    the id of its last pixel in raster order.

    Args:
        mask: ``(B, H, W)`` bool.
        max_iters: cap on the propagation steps (``0``: ``H * W``, always
            enough).

    Returns:
        ``(B, H, W)`` long labels in ``[0, H * W]``, ``0`` for background.
    """
    b, h, w = mask.shape
    ids = torch.arange(1, h * w + 1, device=mask.device,
                       dtype=torch.float32).view(1, h, w)
    keep = mask.float()
    lab = ids * keep
    for _ in range(max_iters or h * w):
        p = F.pad(lab, (1, 1, 1, 1))
        new = torch.stack([lab, p[:, :-2, 1:-1], p[:, 2:, 1:-1],
                           p[:, 1:-1, :-2], p[:, 1:-1, 2:]]).amax(0) * keep
        if torch.equal(new, lab):
            break
        lab = new
    return lab.long()


class ObjectCounts(nn.Module):
    """Per-query object counts: ``sum over objects of sigmoid(score)``.

    Objects are the 4-connected components of a foreground mask predicted
    from a fine image map (1x1 conv + sigmoid, thresholded at 0.5); each
    object's score per channel is the foreground-weighted mean, over its
    pixels, of a (text-conditioned) score map upsampled to the fine map. So
    an object counts once whatever its area, which mean pooling of a map
    cannot do. Gradients reach the score map and, through the weights of
    the mean, the foreground logits (the component labelling itself is
    discrete). Tiny components count in proportion to their foreground mass
    (``tanh(mass / min_mass)``), so a stray pixel adds little.

    Args:
        fine_dim: channels of the fine map (objects are found on it).
        score_dim: channels of the score map.
        channels: ``K``, the number of counts.
        min_mass: foreground mass at which a component counts ~fully.
    """

    def __init__(self, fine_dim: int, score_dim: int, channels: int = 16,
                 min_mass: float = 4.0) -> None:
        super().__init__()
        self.fg = nn.Conv2d(fine_dim, 1, 1)
        self.score = nn.Conv2d(score_dim, channels, 1)
        self.channels = channels
        self.min_mass = min_mass

    @property
    def out_dim(self) -> int:
        return self.channels + 1

    def forward(self, fine: Tensor, score_map: Tensor) -> Tensor:
        """``fine`` ``(B, Cf, H, W)``, ``score_map`` ``(B, Cs, h, w)`` ->
        ``(B, K + 1)``: ``K`` soft counts and the number of objects."""
        b, _, h, w = fine.shape
        fg = torch.sigmoid(self.fg(fine)).squeeze(1)  # (B, H, W)
        with torch.no_grad():
            labels = connected_components(fg > 0.5).flatten(1)  # (B, HW)
        score = self.score(score_map)
        if score.shape[-2:] != (h, w):
            score = F.interpolate(score, size=(h, w), mode='bilinear',
                                  align_corners=False)
        weight = (fg * (fg > 0.5)).flatten(1)  # (B, HW)
        n = h * w + 1
        mass = weight.new_zeros(b, n).scatter_add(1, labels, weight)
        sums = score.new_zeros(b, self.channels, n).scatter_add(
            2, labels[:, None].expand(-1, self.channels, -1),
            score.flatten(2) * weight[:, None])
        mean = sums / mass[:, None].clamp_min(1e-6)
        # Label 0 is the background; other empty labels have zero mass.
        present = torch.tanh(mass / self.min_mass)
        present = torch.cat([present[:, :1] * 0, present[:, 1:]], dim=1)
        counts = (torch.sigmoid(mean) * present[:, None]).sum(-1)
        return torch.cat([counts, present.sum(-1, keepdim=True)], dim=1)
