"""Fusion by one Transformer over the joint text + image sequence."""
from __future__ import annotations

from typing import ClassVar, FrozenSet, Optional

import torch
import torch.nn.functional as F
from torch import nn

from mmfusion.registry import MODELS
from mmfusion.structures import ModalityFeatures
from ..utils.attention import (AttentionBlock, map_hw,
                               sine_position_encoding_2d)
from .base_fusion import MAP, BaseFusion, FusionOutput


@MODELS.register_module()
class SingleStreamFusion(BaseFusion):
    """Single-stream fusion (VisualBERT, Li et al. 2019): self-attention over
    ``[CLS; text tokens; image positions]``.

    Embeddings, all of width ``embed_dims``:

    - text tokens: projected, plus a learned 1D position embedding (up to
      ``max_length`` tokens) and the learned text type embedding;
    - image map positions: projected (1x1), plus the fixed 2D sine position
      encoding and the learned image type embedding;
    - a learned CLS token;

    concatenated, layer-normalised, then ``num_layers`` Transformer encoder
    layers (multi-head self-attention with ``F.scaled_dot_product_attention``
    and an FFN). Layers are post-norm (``x = LN(x + f(x))``, as in BERT /
    VisualBERT) by default, pre-norm (``x = x + f(LN(x))`` and a final
    LayerNorm) with ``norm_first``. The key padding mask hides text padding
    and every token of an absent modality; the CLS token is always a valid
    key, so no query is left without keys. Padding tokens thus change
    nothing and an absent modality contributes nothing.

    Outputs, with ``W`` the output Linear to ``out_dim``:

    - ``pooled = ReLU(W c)`` ``(B, out_dim)``, ``c`` the CLS output;
    - ``map = ReLU(W x)`` ``(B, out_dim, H, W)``, ``x`` the image positions'
      outputs (sharing ``W`` leaves no parameter unused when only
      ``pooled`` is used);
    - ``attention`` ``(B, heads, L_text, H * W)`` when ``return_attention``:
      the last layer's weights from the text tokens over the image
      positions, a slice of the full self-attention matrix (computed
      explicitly on a second path that gives the same output), so a row
      sums to at most 1 (the rest goes to the CLS and text tokens).

    Args:
        image_dim: image channels.
        text_dim: text channels.
        embed_dims: model width (a multiple of 4 and of ``num_heads``).
        num_heads: attention heads.
        num_layers: Transformer encoder layers.
        out_dim: output channels.
        dropout: dropout on the embeddings, attention weights and residual
            branches.
        max_length: longest text (learned positions).
        ffn_ratio: FFN hidden size over ``embed_dims``.
        norm_first: pre-norm layers instead of post-norm.
        init_cfg: mmengine weight-initialisation config.
    """

    input_kinds: ClassVar[FrozenSet[str]] = frozenset({MAP})

    def __init__(self, image_dim: int, text_dim: int, embed_dims: int = 128,
                 num_heads: int = 4, num_layers: int = 1, out_dim: int = 256,
                 dropout: float = 0.0, max_length: int = 64,
                 ffn_ratio: int = 2, norm_first: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(image_dim, text_dim, init_cfg=init_cfg)
        if num_layers < 1:
            raise ValueError('num_layers must be >= 1')
        if embed_dims % 4:
            raise ValueError('the 2D position encoding needs embed_dims % 4 '
                             f'== 0, got {embed_dims}')
        self._out_dim = out_dim
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.max_length = max_length
        self.norm_first = norm_first
        self.image_proj = nn.Linear(image_dim, embed_dims)
        self.text_proj = nn.Linear(text_dim, embed_dims)
        self.text_pos_embed = nn.Parameter(
            torch.zeros(1, max_length, embed_dims))
        self.type_embed = nn.Parameter(torch.zeros(2, embed_dims))  # text, img
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        for p in (self.text_pos_embed, self.type_embed, self.cls_token):
            nn.init.trunc_normal_(p, std=0.02)
        self.embed_norm = nn.LayerNorm(embed_dims)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            AttentionBlock(embed_dims, num_heads, dropout, ffn_ratio,
                           norm_first=norm_first)
            for _ in range(num_layers))
        self.final_norm = (nn.LayerNorm(embed_dims) if norm_first
                           else nn.Identity())
        self.out_proj = nn.Linear(embed_dims, out_dim)

    @property
    def out_dim(self) -> int:
        return self._out_dim

    def forward(self, image: ModalityFeatures, text: ModalityFeatures,
                return_attention: bool = False) -> FusionOutput:
        img = self.image_proj(image.get_tokens())  # (B, N, E)
        b, n = img.shape[:2]
        device = img.device
        h, w = map_hw(image, n)
        img = img + sine_position_encoding_2d(
            h, w, self.embed_dims, device, img.dtype) + self.type_embed[1]
        image_keys = (image.get_mask().to(device)
                      & image.get_present().to(device)[:, None])

        tokens = text.get_tokens()
        length = tokens.shape[1]
        if length > self.max_length:
            raise ValueError(f'{length} text tokens exceed max_length='
                             f'{self.max_length} of {type(self).__name__}')
        txt = (self.text_proj(tokens) + self.text_pos_embed[:, :length]
               + self.type_embed[0])
        text_keys = (text.get_mask()
                     & text.get_present()[:, None]).to(device)

        cls = self.cls_token.expand(b, -1, -1).to(img.dtype)
        x = self.dropout(self.embed_norm(torch.cat((cls, txt, img), 1)))
        key_mask = torch.cat(
            (torch.ones(b, 1, dtype=torch.bool, device=device), text_keys,
             image_keys), 1)
        weights = None
        for i, layer in enumerate(self.layers):
            want = return_attention and i == len(self.layers) - 1
            x, weights = layer(x, key_mask=key_mask, return_attention=want)
        x = self.final_norm(x)

        pooled = F.relu(self.out_proj(x[:, 0]))
        out_map = None
        if image.map is not None:
            fused = F.relu(self.out_proj(x[:, 1 + length:]))
            out_map = fused.transpose(1, 2).reshape(b, self.out_dim, h, w)
        if weights is not None:
            weights = weights[:, :, 1:1 + length, 1 + length:]
        return FusionOutput(pooled=pooled, map=out_map, attention=weights)
