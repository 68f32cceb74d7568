"""Fusion by cross-attention, text-to-image or image-to-text."""
from __future__ import annotations

from typing import ClassVar, FrozenSet, Optional

import torch.nn.functional as F
from torch import nn

from mmfusion.registry import MODELS
from mmfusion.structures import ModalityFeatures
# ``sine_position_encoding_2d`` lives in ``mmfusion.models.utils``; it is
# imported here too so that imports from this module keep working.
from ..utils.attention import (AttentionBlock, map_hw, masked_mean,
                               sine_position_encoding_2d)
from .base_fusion import MAP, BaseFusion, FusionOutput

__all__ = ['CrossAttentionFusion', 'sine_position_encoding_2d']

DIRECTIONS = ('text_to_image', 'image_to_text')


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
    - ``pooled = ReLU(W pool(x))``, ``pool`` the mean or max over the
      positions (``pooling``);
    - ``attention``: the last layer's image-over-text weights, transposed
      to ``(B, heads, L_text, H * W)`` (the layout of the other direction,
      for the visualiser): entry ``[l, p]`` is how much position ``p``
      attends to token ``l``; each column sums to 1 over the real tokens,
      padded tokens' rows are 0.

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
        pooling: ``'mean'`` or ``'max'`` over the image positions for
            ``pooled`` with ``image_to_text`` (unused otherwise).
        init_cfg: mmengine weight-initialisation config.
    """

    input_kinds: ClassVar[FrozenSet[str]] = frozenset({MAP})

    def __init__(self, image_dim: int, text_dim: int, embed_dims: int = 128,
                 num_heads: int = 4, num_layers: int = 1, out_dim: int = 256,
                 dropout: float = 0.0, pos_embed: bool = True,
                 direction: str = 'text_to_image', pooling: str = 'mean',
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
        if pooling not in ('mean', 'max'):
            raise ValueError(f"pooling must be 'mean' or 'max', got "
                             f'{pooling!r}')
        self._out_dim = out_dim
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
        img_tokens = self.image_proj(image.get_tokens())  # (B, N, E)
        device = img_tokens.device
        image_mask = image.get_mask().to(device)
        image_keys = image_mask & image.get_present().to(device)[:, None]
        h, w = map_hw(image, img_tokens.shape[1])
        img = img_tokens
        if self.pos_embed:
            img = img + sine_position_encoding_2d(
                h, w, self.embed_dims, device, img_tokens.dtype)
        img = self.image_norm(img)
        text_mask = (text.get_mask()
                     & text.get_present()[:, None]).to(device)
        txt = self.text_proj(text.get_tokens())  # (B, L, E)

        if self.direction == 'text_to_image':
            query, keys, key_mask = txt, img, image_keys
        else:
            query, keys, key_mask = img, txt, text_mask
        weights = None
        for i, layer in enumerate(self.layers):
            want = return_attention and i == len(self.layers) - 1
            query, weights = layer(query, keys, key_mask,
                                   return_attention=want)

        b = img_tokens.shape[0]
        if self.direction == 'text_to_image':
            attended = masked_mean(query, text_mask)  # (B, E)
            pooled = F.relu(self.out_proj(attended))
            out_map = None
            if image.map is not None:
                fused = F.relu(self.out_proj(img_tokens + attended[:, None]))
                out_map = fused.transpose(1, 2).reshape(b, self.out_dim, h, w)
            return FusionOutput(pooled=pooled, map=out_map, attention=weights)

        if self.pooling == 'mean':
            summary = masked_mean(query, image_mask)
        else:
            summary = query.masked_fill(~image_mask[..., None],
                                        float('-inf')).amax(1)
            summary = summary.masked_fill(~image_mask.any(1, keepdim=True),
                                          0.0)
        pooled = F.relu(self.out_proj(summary))
        out_map = None
        if image.map is not None:
            fused = F.relu(self.out_proj(query))
            out_map = fused.transpose(1, 2).reshape(b, self.out_dim, h, w)
        if weights is not None:
            weights = weights.transpose(-2, -1)
        return FusionOutput(pooled=pooled, map=out_map, attention=weights)
