"""Fusion by cross-attention, text-to-image or image-to-text."""
from __future__ import annotations

from typing import ClassVar, FrozenSet, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmfusion.registry import MODELS
from mmfusion.structures import ModalityFeatures
# ``sine_position_encoding_2d`` lives in ``mmfusion.models.utils``; it is
# imported here too so that imports from this module keep working.
from ..utils.attention import (AttentionBlock, map_hw, masked_mean,
                               sine_position_encoding_2d)
from ..utils.object_tokens import ObjectTokens
from .base_fusion import MAP, BaseFusion, FusionOutput

__all__ = ['CrossAttentionFusion', 'sine_position_encoding_2d']

DIRECTIONS = ('text_to_image', 'image_to_text')
#: How ``image_to_text`` pools the updated image tokens.
POOLINGS = ('mean', 'max', 'sum')
#: What the image tokens are (the ``image_tokens`` argument).
IMAGE_TOKENS = ('map', 'objects')


@MODELS.register_module()
class CrossAttentionFusion(BaseFusion):
    """One modality's tokens (queries) attend to the other's (keys/values).

    Image map positions are projected to ``embed_dims`` (a 1x1 projection),
    get a fixed 2D sine position encoding when ``pos_embed`` (so relations
    such as "left of" are learnable) and a LayerNorm; text tokens are
    projected to ``embed_dims``. Each of ``num_layers`` layers updates the
    queries by multi-head cross-attention
    (``F.scaled_dot_product_attention``), residual + LayerNorm, FFN, residual
    + LayerNorm. Queries never attend to each other.

    ``direction='text_to_image'`` (default): text tokens are the queries,
    image positions the keys. Padding tokens (excluded from the mean below,
    never keys) change nothing. Outputs, with ``t`` the masked mean of the
    updated real text tokens (zeros for absent text) and ``W`` the output
    Linear to ``out_dim``:

    - ``pooled = ReLU(W t)`` ``(B, out_dim)``;
    - ``map = ReLU(W (P x + t))`` ``(B, out_dim, H, W)``, with ``P x`` the
      1x1-projected image map: the projected image map plus the broadcast
      text-attended vector, for dense heads. Sharing ``W`` and ``P`` with
      the pooled path leaves no parameter unused when only ``pooled`` is.
    - ``attention`` ``(B, heads, L_text, H * W)`` of the last layer when
      ``return_attention``: each text token's weights over the image.

    ``direction='image_to_text'``: image positions are the queries, the real
    text tokens the keys (padding masked, so it changes nothing). With ``x``
    the updated image positions:

    - ``map = ReLU(W x)`` ``(B, out_dim, H, W)``;
    - ``pooled = ReLU(W pool(x))``, ``pool`` the mean, max or sum over the
      positions (``pooling``);
    - ``attention``: the last layer's image-over-text weights, transposed
      to ``(B, heads, L_text, H * W)`` (the layout of the other direction,
      for the visualiser): entry ``[l, p]`` is how much position ``p``
      attends to token ``l``; each column sums to 1 over the real tokens,
      padded tokens' rows are 0.

    ``image_tokens='objects'``: the image tokens are the objects found on
    the pixels (``ModalityFeatures.pixels``; plain backgrounds) instead of
    the map's positions, one token each (:class:`ObjectTokens`: mean
    colour, standardised shape moments, centroid and, with
    ``objects.map_features``, the object's mean of the image map), projected
    to ``embed_dims`` (the map part by the same 1x1 projection ``P`` as map
    positions) and LayerNorm-ed: region features, as in VQA models that
    attend over detected objects. With ``text_to_image`` they are the keys;
    with ``image_to_text`` each object reads the question and its FFN can
    decide whether it is an object the question names, before ``pooling``
    over the objects (``'sum'``: how many there are is kept); ``map`` is
    then ``ReLU(W (P x + s))`` with ``s`` that pooled summary. ``attention``
    is painted back onto the map: each position gets its object's weight
    (averaged over the pixels it covers), 0 off the objects.

    ``null_key``: one learnt key (and value) that every query may attend
    to besides the image's. A query that matches ``n`` keys equally shares
    its weight with it as ``1 : n e^s``, so the null key's share tells how
    many matched: counting, which a softmax over the matches alone cannot.

    Attention is computed explicitly (``softmax(Q K^T / sqrt(d))``) on a
    second path that gives the same output when ``return_attention``.
    Absent image (text) samples: the image (text) keys are all masked, the
    attention adds nothing to the queries.

    Args:
        image_dim: image channels.
        text_dim: text channels.
        embed_dims: attention width (a multiple of 4 with ``pos_embed``).
        num_heads: attention heads.
        num_layers: cross-attention layers.
        out_dim: output channels.
        dropout: dropout on attention weights and residual branches.
        pos_embed: add the 2D position encoding to the image tokens.
        direction: ``'text_to_image'`` or ``'image_to_text'``.
        pooling: ``'mean'``, ``'max'`` or ``'sum'`` over the image
            positions (objects) for ``pooled`` with ``image_to_text``
            (unused otherwise); ``'sum'`` over objects keeps how many
            there are.
        image_tokens: ``'map'`` (positions) or ``'objects'`` (see above).
        objects: with ``image_tokens='objects'``, :class:`ObjectTokens`
            arguments (``moments``, ``centroid``, ``bg_threshold``,
            ``min_mass``) and ``map_features`` (bool, default True: append
            each object's mean of the image map; without it the image map
            reaches only ``map``, so the trunk gets no gradient from
            ``pooled``).
        null_key: add the learnt null key.
        text_norm: LayerNorm the projected text tokens, as the image tokens
            are: the text then enters the attention at the image's scale
            (projected GRU states are ~0.3, a LayerNorm-ed token ~1).
        text_query: add the text's pooled vector (projected, no bias) to
            every image token before its LayerNorm, so the first layer's
            FFN sees the question beside each image token from the start
            (at initialisation the attention's output is an order of
            magnitude smaller than the token it is added to).
        init_cfg: mmengine weight-initialisation config.
    """

    input_kinds: ClassVar[FrozenSet[str]] = frozenset({MAP})

    def __init__(self, image_dim: int, text_dim: int, embed_dims: int = 128,
                 num_heads: int = 4, num_layers: int = 1, out_dim: int = 256,
                 dropout: float = 0.0, pos_embed: bool = True,
                 direction: str = 'text_to_image', pooling: str = 'mean',
                 image_tokens: str = 'map', objects: Optional[dict] = None,
                 null_key: bool = False, text_norm: bool = False,
                 text_query: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(image_dim, text_dim, init_cfg=init_cfg)
        if num_layers < 1:
            raise ValueError('num_layers must be >= 1')
        if pos_embed and embed_dims % 4:
            raise ValueError('pos_embed needs embed_dims % 4 == 0, got '
                             f'{embed_dims}')
        if direction not in DIRECTIONS:
            raise ValueError(f'direction must be one of {DIRECTIONS}, got '
                             f'{direction!r}')
        if pooling not in POOLINGS:
            raise ValueError(f'pooling must be one of {POOLINGS}, got '
                             f'{pooling!r}')
        if image_tokens not in IMAGE_TOKENS:
            raise ValueError(f'image_tokens must be one of {IMAGE_TOKENS}, '
                             f'got {image_tokens!r}')
        if objects is not None and image_tokens != 'objects':
            raise ValueError("objects is set but image_tokens is not "
                             "'objects'; set image_tokens: objects or drop "
                             'objects')
        self._out_dim = out_dim
        self.image_tokens = image_tokens
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.pos_embed = pos_embed
        self.direction = direction
        self.pooling = pooling
        self.image_proj = nn.Linear(image_dim, embed_dims)
        self.image_norm = nn.LayerNorm(embed_dims)
        self.text_proj = nn.Linear(text_dim, embed_dims)
        self.layers = nn.ModuleList(
            AttentionBlock(embed_dims, num_heads, dropout)
            for _ in range(num_layers))
        self.out_proj = nn.Linear(embed_dims, out_dim)
        self.objects = self.object_proj = None
        if image_tokens == 'objects':
            cfg = dict(objects or {})
            self.map_features = bool(cfg.pop('map_features', True))
            try:
                self.objects = ObjectTokens(
                    map_dim=image_dim if self.map_features else 0, **cfg)
            except TypeError as e:
                raise ValueError(
                    f'CrossAttentionFusion objects: {e}; it takes '
                    'moments, centroid, bg_threshold, min_mass, '
                    'map_features') from None
            hand = self.objects.out_dim - self.objects.map_dim
            # The map part goes through image_proj (which has the bias).
            self.object_proj = nn.Linear(hand, embed_dims, bias=False)
        self.null = (nn.Parameter(torch.randn(1, 1, embed_dims) * 0.02)
                     if null_key else None)
        self.text_norm = nn.LayerNorm(embed_dims) if text_norm else None
        self.text_query = (nn.Linear(text_dim, embed_dims, bias=False)
                           if text_query else None)

    @property
    def out_dim(self) -> int:
        return self._out_dim

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Checkpoints from before the attention layer moved to
        # ``models.utils`` hold ``layers.i.q_proj`` for ``layers.i.attn...``.
        for i in range(len(self.layers)):
            for name in ('q_proj', 'k_proj', 'v_proj', 'out_proj'):
                for p in ('weight', 'bias'):
                    old = f'{prefix}layers.{i}.{name}.{p}'
                    if old in state_dict:
                        state_dict[f'{prefix}layers.{i}.attn.{name}.{p}'] = \
                            state_dict.pop(old)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, image: ModalityFeatures, text: ModalityFeatures,
                return_attention: bool = False) -> FusionOutput:
        positions = image.get_tokens()  # (B, N, C)
        device = positions.device
        present = image.get_present().to(device)
        h, w = map_hw(image, positions.shape[1])
        slots = None
        image_mask = image.get_mask().to(device)
        # (B, 1, E) added to every image token, or 0.
        tq = 0.0
        if self.text_query is not None:
            tq = self.text_query(text.get_pooled().to(device)) * \
                text.get_present().to(device)[:, None].float()
            tq = tq[:, None]
        if self.objects is not None:
            img, image_keys, slots = self._object_keys(image, tq)
            image_mask = image_keys
            # Positions are needed for the map only (computed if read).
            img_tokens = None
        else:
            img_tokens = self.image_proj(positions)  # (B, N, E)
            image_keys = image_mask & present[:, None]
            img = img_tokens
            if self.pos_embed:
                img = img + sine_position_encoding_2d(
                    h, w, self.embed_dims, device, img_tokens.dtype)
            img = self.image_norm(img + tq)
        text_mask = (text.get_mask()
                     & text.get_present()[:, None]).to(device)
        txt = self.text_proj(text.get_tokens())  # (B, L, E)
        if self.text_norm is not None:
            txt = self.text_norm(txt)

        if self.direction == 'text_to_image':
            query, keys, key_mask = txt, img, image_keys
        else:
            query, keys, key_mask = img, txt, text_mask
        if self.null is not None:
            keys = torch.cat([self.null.expand(keys.shape[0], -1, -1).to(
                keys.dtype), keys], 1)
            # A sample without the keys' modality keeps no key at all (the
            # attention adds nothing to it).
            has = (present if self.direction == 'text_to_image'
                   else text.get_present().to(device))
            key_mask = torch.cat([has[:, None], key_mask], 1)
        weights = None
        for i, layer in enumerate(self.layers):
            want = return_attention and i == len(self.layers) - 1
            query, weights = layer(query, keys, key_mask,
                                   return_attention=want)

        b = positions.shape[0]
        if weights is not None and self.null is not None:
            weights = weights[..., 1:]
        if weights is not None and self.direction == 'image_to_text':
            weights = weights.transpose(-2, -1)  # (B, heads, L, N)
        if weights is not None and slots is not None:
            weights = self._paint(weights, slots, (h, w))
        if self.direction == 'text_to_image':
            attended = masked_mean(query, text_mask)  # (B, E)
            pooled = F.relu(self.out_proj(attended))
            out_map = None
            if image.map is not None:
                def out_map() -> Tensor:
                    proj = (self.image_proj(positions) if img_tokens is None
                            else img_tokens)
                    fused = F.relu(self.out_proj(proj + attended[:, None]))
                    return fused.transpose(1, 2).reshape(b, self.out_dim, h,
                                                         w)
            return FusionOutput(pooled=pooled, map=out_map, attention=weights)

        if self.pooling == 'mean':
            summary = masked_mean(query, image_mask)
        elif self.pooling == 'sum':
            summary = (query * image_mask[..., None].to(query.dtype)).sum(1)
        else:
            summary = query.masked_fill(~image_mask[..., None],
                                        float('-inf')).amax(1)
            summary = summary.masked_fill(~image_mask.any(1, keepdim=True),
                                          0.0)
        pooled = F.relu(self.out_proj(summary))
        out_map = None
        if image.map is not None and slots is None:
            fused = F.relu(self.out_proj(query))
            out_map = fused.transpose(1, 2).reshape(b, self.out_dim, h, w)
        elif image.map is not None:
            # Objects are no map: the positions plus the objects' summary.
            def out_map() -> Tensor:
                fused = F.relu(self.out_proj(self.image_proj(positions)
                                             + summary[:, None]))
                return fused.transpose(1, 2).reshape(b, self.out_dim, h, w)
        return FusionOutput(pooled=pooled, map=out_map, attention=weights)

    def _object_keys(self, image: ModalityFeatures, tq):
        """Object tokens -> keys ``(B, N, E)``, their mask ``(B, N)`` (real
        objects of present images) and each pixel's slot ``(B, H, W)``."""
        if image.pixels is None:
            raise ValueError(
                "CrossAttentionFusion: image_tokens='objects' finds the "
                'objects on the image itself (ModalityFeatures.pixels), which '
                'this model does not pass; use image_tokens: map')
        fmap = image.map if self.map_features else None
        tokens, mask, slots = self.objects(image.pixels, fmap)
        hand = self.object_proj.in_features
        keys = self.object_proj(tokens[..., :hand])
        if fmap is not None:
            keys = keys + self.image_proj(tokens[..., hand:])
        present = image.get_present().to(keys.device)
        return self.image_norm(keys + tq), mask & present[:, None], slots

    @staticmethod
    def _paint(weights: Tensor, slots: Tensor, hw) -> Tensor:
        """Weights over objects ``(B, heads, L, N)`` -> over the map's
        positions ``(B, heads, L, h * w)``: each pixel takes its object's
        weight, then the pixels are averaged into the map's cells."""
        b, heads, length, n = weights.shape
        idx = slots.flatten(1)  # (B, HW)
        on = (idx >= 0).to(weights.dtype)
        gathered = weights.gather(
            -1, idx.clamp_min(0)[:, None, None, :].expand(
                b, heads, length, -1)) * on[:, None, None, :]
        pix = gathered.view(b, heads * length, *slots.shape[-2:])
        cells = F.adaptive_avg_pool2d(pix, hw)
        return cells.view(b, heads, length, hw[0] * hw[1])
