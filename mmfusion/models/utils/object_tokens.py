"""The objects found on an image's pixels, as a set of tokens."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .object_counts import (MOMENT_ORDERS, _normalised_moments,
                            background_foreground, connected_components,
                            coordinate_grid, weighted_means)


class ObjectTokens(nn.Module):
    """One token per object on a plain background: region features.

    Objects are the 4-connected components of the positions that differ
    from the image's background value (:func:`background_foreground`), as
    for :class:`ObjectCounts` with ``proposals='background'``; components
    lighter than ``min_mass`` pixels (stray anti-aliasing) are dropped. Each
    object is described by

    - its mean pixel value (``pixel_dim``: its colour);
    - with ``moments``, the normalised central moments of its mask, orders
      2-4, and its log mass (13 values, standardised over the batch's
      objects by a BatchNorm: shapes differ by hundredths in them);
    - with ``centroid``, its centroid ``(x, y)`` in ``[-1, 1]``;
    - with ``map_dim > 0``, its mean of an image feature map (over the
      map's cells, each weighted by the fraction of it the object covers),
      so a learnt trunk adds to the hand-made description and receives
      gradients.

    These are the keys of a cross-attention over objects (bottom-up region
    features, as in VQA models that attend over detected objects), in place
    of a map's positions. Plain backgrounds only (the shapes benchmark,
    scans, lab images): on photos every position differs from the border.

    Args:
        pixel_dim: channels of the pixels (3).
        map_dim: channels of the feature map whose object means are
            appended (0: none).
        moments: append the shape descriptors.
        centroid: append the centroid.
        bg_threshold: foreground threshold, in the pixels' units
            (normalised: 0.5 is ~30 of 255 grey levels).
        min_mass: components with fewer pixels are not objects.
    """

    def __init__(self, pixel_dim: int = 3, map_dim: int = 0,
                 moments: bool = True, centroid: bool = True,
                 bg_threshold: float = 0.5, min_mass: float = 4.0) -> None:
        super().__init__()
        if map_dim < 0:
            raise ValueError(f'map_dim must be >= 0, got {map_dim}')
        self.pixel_dim = pixel_dim
        self.map_dim = map_dim
        self.centroid = centroid
        self.bg_threshold = float(bg_threshold)
        self.min_mass = float(min_mass)
        self.moments = (nn.BatchNorm1d(len(MOMENT_ORDERS) + 1)
                        if moments else None)

    @property
    def out_dim(self) -> int:
        """Channels of each token."""
        return (self.pixel_dim + self.map_dim
                + (len(MOMENT_ORDERS) + 1 if self.moments is not None else 0)
                + (2 if self.centroid else 0))

    def forward(self, pixels: Tensor, fmap: Optional[Tensor] = None
                ) -> Tuple[Tensor, Tensor, Tensor]:
        """Describe the objects.

        Args:
            pixels: ``(B, C, H, W)`` the (normalised) image.
            fmap: ``(B, map_dim, h, w)``, needed when ``map_dim > 0``.

        Returns:
            ``tokens`` ``(B, N, out_dim)`` (N: the most objects in a sample
            of the batch, at least 1; zeros past a sample's objects),
            ``mask`` ``(B, N)`` bool (True at real objects) and ``slots``
            ``(B, H, W)`` long: the token index of each pixel's object, -1
            off the objects (to paint attention over objects back onto the
            image).
        """
        if (fmap is None) != (self.map_dim == 0):
            raise ValueError('ObjectTokens: pass a feature map exactly when '
                             'map_dim > 0')
        b, _, h, w = pixels.shape
        n = h * w + 1
        with torch.no_grad():
            inside = background_foreground(pixels, self.bg_threshold)
            labels = connected_components(inside).flatten(1)  # (B, HW)
            key = labels + torch.arange(b, device=labels.device)[:, None] * n
            uniq, inv = torch.unique(key, return_inverse=True)
            inv = inv.flatten()
            weight = inside.flatten(1).to(pixels.dtype)
            mass = weight.new_zeros(uniq.numel()).index_add(
                0, inv, weight.flatten())
            # Real objects: not a sample's background label, heavy enough.
            real = (uniq % n != 0) & (mass >= self.min_mass)
            batch_of = uniq // n
            # Each real object's index among its sample's objects (uniq is
            # sorted, so a sample's objects are contiguous).
            count = torch.zeros(b, dtype=torch.long, device=uniq.device
                                ).index_add(0, batch_of, real.long())
            offset = torch.cumsum(count, 0) - count
            rank = torch.cumsum(real.long(), 0) - 1 - offset[batch_of]
            num = max(int(count.max()) if b else 0, 1)
            slot_of = torch.where(real, rank, torch.full_like(rank, -1))
            slots = slot_of[inv].view(b, h, w)

        parts = [weighted_means(pixels, weight, inv, mass)]
        if self.moments is not None:
            with torch.no_grad():
                desc = _normalised_moments(weight, inv, uniq.numel(), h, w,
                                           mass)
            # Statistics of the real objects only (the background labels'
            # "moments" are those of an empty mass).
            std = torch.zeros_like(desc)
            bn = self.moments
            if int(real.sum()) > 1 or not self.training:
                std[real] = bn(desc[real])
            elif bool(real.any()):
                # One object in the batch has no batch statistics.
                std[real] = F.batch_norm(desc[real], bn.running_mean,
                                         bn.running_var, bn.weight, bn.bias,
                                         False, 0.0, bn.eps)
            parts.append(std)
        if self.centroid:
            with torch.no_grad():
                parts.append(weighted_means(coordinate_grid(pixels), weight,
                                            inv, mass))
        desc = torch.cat([p.to(pixels.dtype) for p in parts], 1)  # (M, F)
        tokens = desc.new_zeros(b, num, desc.shape[1])
        mask = torch.zeros(b, num, dtype=torch.bool, device=desc.device)
        tokens = tokens.index_put((batch_of[real], rank[real]), desc[real])
        mask[batch_of[real], rank[real]] = True
        if fmap is not None:
            tokens = torch.cat([tokens, self._map_means(fmap, slots, num)],
                               -1)
        return tokens, mask, slots

    @staticmethod
    def _map_means(fmap: Tensor, slots: Tensor, num: int) -> Tensor:
        """``(B, C, h, w)`` map -> ``(B, num, C)``: each object's mean over
        the map's cells, each cell weighted by the fraction of its pixels
        the object covers (the objects' masks are area-pooled to the map:
        a 64-channel map is never resized to the pixels)."""
        with torch.no_grad():
            onehot = F.one_hot(slots + 1, num + 1)[..., 1:]  # (B, H, W, N)
            cover = onehot.permute(0, 3, 1, 2).to(fmap.dtype)
            if cover.shape[-2:] != fmap.shape[-2:]:
                cover = F.adaptive_avg_pool2d(cover, fmap.shape[-2:])
            cover = cover.flatten(2)  # (B, N, hw)
            cover = cover / cover.sum(-1, keepdim=True).clamp_min(1e-6)
        return torch.einsum('bnq,bcq->bnc', cover, fmap.flatten(2))
