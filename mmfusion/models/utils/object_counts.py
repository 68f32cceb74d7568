"""Soft object counts from connected components of a learnt foreground."""
from __future__ import annotations

from typing import Optional, Sequence, Union

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


#: Ways :class:`ObjectCounts` finds objects (its ``proposals`` argument).
PROPOSALS = ('learnt', 'background')


def background_foreground(image: Tensor, threshold: float) -> Tensor:
    """Positions that differ from the image's background value.

    The background value is the per-channel median of the image's border
    (its first and last rows and columns); a position is foreground where
    some channel differs from it by more than ``threshold``.

    Args:
        image: ``(B, C, H, W)``.
        threshold: in the image's units.

    Returns:
        ``(B, H, W)`` bool.
    """
    border = torch.cat([image[:, :, 0], image[:, :, -1], image[:, :, :, 0],
                        image[:, :, :, -1]], dim=2)  # (B, C, 2H + 2W)
    bg = border.median(dim=2).values[:, :, None, None]
    return (image - bg).abs().amax(dim=1) > threshold


def weighted_means(v: Tensor, weight: Tensor, inv: Tensor,
                   mass: Tensor) -> Tensor:
    """Each object's weighted mean of a map.

    Args:
        v: ``(B, C, H, W)``.
        weight: ``(B, H*W)`` foreground weights.
        inv: ``(B*H*W,)`` compact object id of every pixel.
        mass: ``(M,)`` each object's total weight.

    Returns:
        ``(M, C)``.
    """
    pix = (v.flatten(2) * weight[:, None]).transpose(1, 2)
    return pix.new_zeros(mass.numel(), pix.shape[-1]).index_add(
        0, inv, pix.reshape(-1, pix.shape[-1])) / mass[:, None].clamp_min(1e-6)


def coordinate_grid(like: Tensor) -> Tensor:
    """``(B, 2, H, W)`` pixel coordinates ``(x, y)`` in ``[-1, 1]`` for a
    ``(B, C, H, W)`` map (its device and dtype)."""
    b, _, h, w = like.shape
    grid = torch.stack(torch.meshgrid(
        torch.linspace(-1, 1, w, device=like.device, dtype=like.dtype),
        torch.linspace(-1, 1, h, device=like.device, dtype=like.dtype),
        indexing='xy'))  # (2, H, W)
    return grid.expand(b, -1, -1, -1)


#: (p, q) of the normalised central moments ``eta_pq`` that describe an
#: object's foreground mass (orders 2 to 4).
MOMENT_ORDERS = ((2, 0), (1, 1), (0, 2), (3, 0), (2, 1), (1, 2), (0, 3),
                 (4, 0), (3, 1), (2, 2), (1, 3), (0, 4))


def _normalised_moments(weight: Tensor, inv: Tensor, m_obj: int, h: int,
                        w: int, mass: Tensor) -> Tensor:
    """Per-object shape descriptors of the foreground mass.

    ``eta_pq = mu_pq / mu_00 ** (1 + (p + q) / 2)`` for :data:`MOMENT_ORDERS`
    (central moments ``mu``, pixel units of the fine map), each mapped to
    ``sign * |eta| ** (2 / (p + q))`` (a length ratio, order 0.1-0.5, for
    every order alike), then the object's ``log(1 + mass)``.

    Args:
        weight: ``(B, H*W)`` foreground weights (0 off the foreground).
        inv: ``(B*H*W,)`` compact object id of every pixel.
        m_obj: number of compact ids.
        h, w: the fine map's size.
        mass: ``(M,)`` each object's total weight.

    Returns:
        ``(M, len(MOMENT_ORDERS) + 1)``.
    """
    ys, xs = torch.meshgrid(
        torch.arange(h, device=weight.device, dtype=weight.dtype),
        torch.arange(w, device=weight.device, dtype=weight.dtype),
        indexing='ij')
    wf = weight.flatten()
    x = xs.flatten().repeat(weight.shape[0])
    y = ys.flatten().repeat(weight.shape[0])
    m00 = mass.clamp_min(1e-6)

    def per_object(v: Tensor) -> Tensor:
        return v.new_zeros(m_obj).index_add(0, inv, v * wf) / m00

    cx, cy = per_object(x), per_object(y)
    dx, dy = x - cx[inv], y - cy[inv]
    out = []
    for p, q in MOMENT_ORDERS:
        eta = per_object(dx ** p * dy ** q) / m00 ** ((p + q) / 2)
        out.append(eta.sign() * (eta.abs() + 1e-12) ** (2 / (p + q)))
    out.append(torch.log1p(mass))
    return torch.stack(out, dim=1)


class ObjectCounts(nn.Module):
    """Per-query object counts: ``sum over objects of sigmoid(score)``.

    Objects are the 4-connected components of a foreground mask on a fine
    image map: predicted from it (1x1 conv + sigmoid, thresholded at 0.5)
    or, with ``proposals='background'``, where it differs from the image's
    background (:func:`background_foreground`). An
    object's score is a function of the foreground-weighted mean, over its
    pixels, of one or more (text-conditioned) score maps upsampled to the
    fine map: linear (``hidden=0``) or an MLP with one hidden layer. The
    scorer's first linear layer runs per pixel on each map at its own
    resolution (a 1x1 conv; by linearity the same as applying it to the
    objects' mean of the concatenated upsampled maps), so only ``hidden``
    (or ``K``) channels are upsampled and averaged. So an object counts once
    whatever its area, which mean pooling of a map cannot do. Gradients
    reach the maps and, through the weights of the mean, the foreground
    logits (the component labelling itself is discrete). Tiny components
    count in proportion to their foreground mass (``tanh(mass /
    min_mass)``), so a stray pixel adds little.

    Args:
        fine_dim: channels of the fine map (objects are found on it).
        score_dim: channels of the score map, or a list: one per map.
        channels: ``K``, the number of counts.
        min_mass: foreground mass at which a component counts ~fully.
        hidden: ``0``: each score is linear in the object's mean features;
            ``> 0``: an MLP of this hidden width, so a score can depend on a
            conjunction of features (e.g. a shape seen at two resolutions).
        moments: also describe each object by the shape of its foreground
            mass: normalised central moments of orders 2 to 4 (scale and
            translation invariant, as ``regionprops``' ``moments_normalized``)
            and its log mass. They need ``hidden > 0`` and ``query_dim > 0``
            to be compared with the question.
        query_dim: ``> 0``: a per-sample query vector (e.g. the text's
            pooled vector) enters the scorer's first layer, so scores of
            text-independent descriptions (moments) can depend on the text.
        proposals: how objects are found on the fine map. ``'learnt'``: a
            foreground predicted from it (1x1 conv + sigmoid > 0.5; gradients
            reach it through the weights of the means). ``'background'``:
            every position whose value differs from the image's background
            value (the per-channel median of its border) by more than
            ``bg_threshold`` in some channel, with weight 1: objects on a
            plain background (the shapes benchmark, scans, lab images) are
            then found exactly from the start, at the fine map's resolution,
            and nothing has to be learnt before counting can be.
        bg_threshold: the ``'background'`` proposals' threshold, in the fine
            map's units (normalised pixels: 0.5 is ~30 of 255 grey levels).
        attend: ``A > 0``: the scorer also gives ``A`` attention logits per
            object; each is a softmax over the sample's objects (weighted by
            their presence), and the output gains the attended centroid
            ``(x, y)`` of each, in ``[-1, 1]`` of the fine map: where the
            object a question names is, so "is the red circle left of the
            blue square?" is a comparison of two read-out numbers.
        attend_features: each attention also reads out the attended
            object's description: its mean over the fine map (the pixels:
            its colour) and, with ``moments``, its standardised moments. So
            "is the square blue?" trains the attentions to pick the named
            object, which "left of" questions then reuse.
    """

    def __init__(self, fine_dim: int, score_dim: Union[int, Sequence[int]],
                 channels: int = 16, min_mass: float = 4.0,
                 hidden: int = 0, moments: bool = False,
                 query_dim: int = 0, proposals: str = 'learnt',
                 bg_threshold: float = 0.5, attend: int = 0,
                 attend_features: bool = False) -> None:
        super().__init__()
        if proposals not in PROPOSALS:
            raise ValueError(f'proposals must be one of {PROPOSALS}, got '
                             f'{proposals!r}')
        if hidden < 0 or query_dim < 0 or attend < 0:
            raise ValueError(f'hidden, query_dim and attend must be >= 0, '
                             f'got {hidden}, {query_dim} and {attend}')
        if moments and not (hidden and query_dim):
            raise ValueError('moments need hidden > 0 and query_dim > 0: '
                             'a linear score of text-independent moments '
                             'cannot depend on the question')
        dims = [score_dim] if isinstance(score_dim, int) else list(score_dim)
        if not dims:
            raise ValueError('score_dim must name at least one map')
        self.bg_threshold = float(bg_threshold)
        self.fg = nn.Conv2d(fine_dim, 1, 1) if proposals == 'learnt' else None
        width = hidden or channels + attend
        # One bias for the sum of the maps' terms.
        self.embed = nn.ModuleList(
            nn.Conv2d(d, width, 1, bias=i == 0) for i, d in enumerate(dims))
        # Shapes differ by a few hundredths in these descriptors (circle
        # and square: eta_20 0.080 vs 0.083): standardised over the batch's
        # objects first, or the scorer cannot tell them apart in time.
        self.moments = (nn.Sequential(
            nn.BatchNorm1d(len(MOMENT_ORDERS) + 1),
            nn.Linear(len(MOMENT_ORDERS) + 1, width, bias=False))
                        if moments else None)
        self.query = (nn.Linear(query_dim, width, bias=False)
                      if query_dim else None)
        self.head = (nn.Sequential(nn.ReLU(inplace=True),
                                   nn.Linear(hidden, channels + attend))
                     if hidden > 0 else None)
        self.channels = channels
        self.attend = attend
        if attend_features and not attend:
            raise ValueError('attend_features reads out what the attentions '
                             'pick: set attend > 0')
        self.attend_features = attend_features
        self._feat_dim = (fine_dim + (len(MOMENT_ORDERS) + 1 if moments
                                      else 0)) if attend_features else 0
        self.min_mass = min_mass

    @property
    def out_dim(self) -> int:
        return self.channels + 1 + self.attend * (2 + self._feat_dim)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Checkpoints from before several score maps (one map, linear
        # score) named the 1x1 conv ``score``: it is ``embed.0`` now.
        for name in ('weight', 'bias'):
            old = f'{prefix}score.{name}'
            if old in state_dict and len(self.embed) == 1 \
                    and self.head is None:
                state_dict[f'{prefix}embed.0.{name}'] = state_dict.pop(old)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, fine: Tensor,
                score_map: Union[Tensor, Sequence[Tensor]],
                query: Optional[Tensor] = None) -> Tensor:
        """``fine`` ``(B, Cf, H, W)``; ``score_map`` ``(B, Cs, h, w)`` or one
        map per ``score_dim`` entry (any sizes); ``query`` ``(B, query_dim)``
        when ``query_dim > 0`` -> ``(B, out_dim)``: ``K`` soft counts, the
        number of objects and, with ``attend``, for each of the ``A``
        attentions the attended centroid ``(x, y)`` (and, with
        ``attend_features``, the attended description)."""
        if (query is None) != (self.query is None):
            raise ValueError('ObjectCounts: pass a query exactly when '
                             'query_dim > 0')
        b, _, h, w = fine.shape
        n = h * w + 1
        maps = [score_map] if isinstance(score_map, Tensor) else score_map
        if len(maps) != len(self.embed):
            raise ValueError(f'expected {len(self.embed)} score maps, got '
                             f'{len(maps)}')
        if self.fg is not None:
            fg = torch.sigmoid(self.fg(fine)).squeeze(1)  # (B, H, W)
            inside = fg > 0.5
        else:
            with torch.no_grad():
                inside = background_foreground(fine, self.bg_threshold)
            fg = inside.to(fine.dtype)
        with torch.no_grad():
            labels = connected_components(inside).flatten(1)  # (B, HW)
            # One compact id per (sample, component) across the batch, so
            # descriptions are computed for the objects that exist only.
            key = labels + torch.arange(b, device=labels.device)[:, None] * n
            uniq, inv = torch.unique(key, return_inverse=True)
            inv = inv.flatten()
        weight = (fg * inside).flatten(1)  # (B, HW)
        m_obj = uniq.numel()
        mass = weight.new_zeros(m_obj).index_add(0, inv, weight.flatten())
        width = self.embed[0].out_channels

        def object_means(v: Tensor) -> Tensor:
            return weighted_means(v, weight, inv, mass)

        score = None
        for embed, m in zip(self.embed, maps):
            # The 1x1 conv, the upsampling and the mean are all linear, so
            # they commute: run the conv on whichever side is narrower (the
            # pixels' 3 channels are averaged first, a 64-channel map is
            # embedded first), so only min(C, width) channels are resized.
            narrow = m.shape[1] <= width
            e = m if narrow else embed(m)
            if e.shape[-2:] != (h, w):
                e = F.interpolate(e, size=(h, w), mode='bilinear',
                                  align_corners=False)
            e = object_means(e)
            if narrow:
                e = F.linear(e, embed.weight.flatten(1), embed.bias)
            score = e if score is None else score + e  # (M, width)
        batch_of = uniq // n
        described = [object_means(fine)] if self.attend_features else []
        if self.moments is not None:
            # Descriptors only: no gradient into the foreground through
            # them (the fractional powers are steep near 0).
            with torch.no_grad():
                desc = _normalised_moments(weight, inv, m_obj, h, w, mass)
            desc = self.moments[0](desc)  # standardised
            score = score + self.moments[1](desc)
            if self.attend_features:
                described.append(desc)
        if self.query is not None:
            score = score + self.query(query)[batch_of]
        if self.head is not None:
            score = self.head(score)
        # Sums over objects in float32: under autocast the scorer's layers
        # give half precision, and counts of up to ~6 objects need more.
        score = score.float()
        score, logits = score[:, :self.channels], score[:, self.channels:]
        # Label 0 is the background of each sample.
        real = uniq % n != 0
        present = torch.tanh(mass / self.min_mass) * real
        counts = score.new_zeros(b, self.channels).index_add(
            0, batch_of, torch.sigmoid(score) * present[:, None])
        total = present.new_zeros(b).index_add(0, batch_of, present)
        out = [counts, total[:, None]]
        if self.attend:
            with torch.no_grad():
                centre = object_means(coordinate_grid(fine))  # (M, 2)
            out.append(self._attend(logits, present, real, batch_of, b,
                                    torch.cat([centre] + described, 1)))
        return torch.cat(out, dim=1)

    def _attend(self, logits: Tensor, present: Tensor, real: Tensor,
                batch_of: Tensor, b: int, read_out: Tensor) -> Tensor:
        """``(M, A)`` logits, ``(M, F)`` per-object ``read_out`` ->
        ``(B, A * F)``: per sample and attention, the softmax-over-objects
        weighted ``read_out`` (zeros for a sample without objects)."""
        # A faint component gets proportionally less attention; the
        # background label none.
        logits = logits + torch.log(present.clamp_min(1e-6))[:, None]
        logits = logits.masked_fill(~real[:, None], float('-inf'))
        idx = batch_of[:, None].expand_as(logits)
        top = logits.new_full((b, self.attend), float('-inf')).scatter_reduce(
            0, idx, logits, 'amax', include_self=True).detach()
        e = torch.exp(logits - top[batch_of]).masked_fill(~real[:, None], 0)
        den = e.new_zeros(b, self.attend).index_add(0, batch_of, e)
        attn = e / den[batch_of].clamp_min(1e-12)  # (M, A)
        read = attn.new_zeros(b, self.attend, read_out.shape[1]).index_add(
            0, batch_of, attn[:, :, None] * read_out[:, None, :])
        return read.flatten(1)
