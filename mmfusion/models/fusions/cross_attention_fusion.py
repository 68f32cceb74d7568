"""Fusion by text-to-image cross-attention."""
from __future__ import annotations

import math
from typing import ClassVar, FrozenSet, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmfusion.registry import MODELS
from mmfusion.structures import ModalityFeatures
from .base_fusion import MAP, BaseFusion, FusionOutput


def sine_position_encoding_2d(h: int, w: int, dim: int,
                              device: Optional[torch.device] = None,
                              dtype: torch.dtype = torch.float32,
                              temperature: float = 10000.0) -> Tensor:
    """``(h * w, dim)`` fixed 2D sine/cosine encoding, row-major positions.

    The first half of the channels encodes y, the second x (DETR-style):
    coordinates normalised to ``[0, 2 pi]``, then ``sin``/``cos`` at
    geometrically spaced frequencies. Defined for any map size, so nothing is
    tied to the training resolution. ``dim`` must be a multiple of 4.
    """
    if dim % 4:
        raise ValueError(f'the 2D sine encoding needs dim % 4 == 0, got {dim}')
    quarter = dim // 4
    freqs = temperature ** (-torch.arange(quarter, device=device,
                                          dtype=torch.float32) / quarter)
    ys = torch.arange(h, device=device, dtype=torch.float32)
    xs = torch.arange(w, device=device, dtype=torch.float32)
    ys = ys / max(h - 1, 1) * 2 * math.pi
    xs = xs / max(w - 1, 1) * 2 * math.pi
    ey = ys[:, None] * freqs[None]  # (h, quarter)
    ex = xs[:, None] * freqs[None]  # (w, quarter)
    ey = torch.cat((ey.sin(), ey.cos()), -1)[:, None].expand(h, w, -1)
    ex = torch.cat((ex.sin(), ex.cos()), -1)[None].expand(h, w, -1)
    return torch.cat((ey, ex), -1).reshape(h * w, dim).to(dtype)


class _CrossAttentionLayer(nn.Module):
    """Queries attend to keys/values; residual + LayerNorm, FFN, LayerNorm."""

    def __init__(self, embed_dims: int, num_heads: int,
                 dropout: float) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims={embed_dims} is not divisible by '
                             f'num_heads={num_heads}')
        self.num_heads = num_heads
        self.head_dims = embed_dims // num_heads
        self.dropout_p = dropout
        self.q_proj = nn.Linear(embed_dims, embed_dims)
        self.k_proj = nn.Linear(embed_dims, embed_dims)
        self.v_proj = nn.Linear(embed_dims, embed_dims)
        self.out_proj = nn.Linear(embed_dims, embed_dims)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.ffn = nn.Sequential(
            nn.Linear(embed_dims, 2 * embed_dims), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(2 * embed_dims, embed_dims))
        self.norm2 = nn.LayerNorm(embed_dims)
        self.dropout = nn.Dropout(dropout)

    def _heads(self, x: Tensor) -> Tensor:
        """``(B, N, E)`` -> ``(B, heads, N, E / heads)``."""
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, self.head_dims).transpose(1, 2)

    def forward(self, query: Tensor, key_value: Tensor, key_mask: Tensor,
                key_present: Tensor, return_attention: bool = False
                ) -> Tuple[Tensor, Optional[Tensor]]:
        """One layer.

        Args:
            query: ``(B, L, E)`` text tokens.
            key_value: ``(B, N, E)`` image tokens.
            key_mask: ``(B, N)`` bool, True at keys that may be attended
                (each row has at least one).
            key_present: ``(B,)`` bool; absent images add no attended value.
            return_attention: compute the weights explicitly and return them.

        Returns:
            Updated queries ``(B, L, E)`` and the weights ``(B, heads, L,
            N)`` or None.
        """
        b, length, e = query.shape
        q = self._heads(self.q_proj(query))
        k = self._heads(self.k_proj(key_value))
        v = self._heads(self.v_proj(key_value))
        attn_mask = key_mask[:, None, None, :]  # (B, 1, 1, N), True = keep
        dropout_p = self.dropout_p if self.training else 0.0
        weights = None
        if return_attention:
            scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dims)
            scores = scores.masked_fill(~attn_mask, float('-inf'))
            weights = scores.softmax(dim=-1)
            attn = F.dropout(weights, dropout_p, self.training) @ v
        else:
            attn = F.scaled_dot_product_attention(
                q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)
        attn = attn.transpose(1, 2).reshape(b, length, e)
        attn = self.out_proj(attn)
        attn = attn * key_present[:, None, None].to(attn.dtype)
        x = self.norm1(query + self.dropout(attn))
        x = self.norm2(x + self.dropout(self.ffn(x)))
        return x, weights


@MODELS.register_module()
class CrossAttentionFusion(BaseFusion):
    """Text tokens (queries) attend to the image positions (keys/values).

    Image map positions are projected to ``embed_dims`` (a 1x1 projection),
    get a fixed 2D sine position encoding when ``pos_embed`` (so relations
    such as "left of" are learnable) and a LayerNorm; text tokens are
    projected to ``embed_dims``. Each of ``num_layers`` layers updates the
    text tokens by multi-head cross-attention
    (``F.scaled_dot_product_attention``), residual + LayerNorm, FFN, residual
    + LayerNorm. Text tokens never attend to each other, so padding tokens
    (excluded from the mean below, never keys) change nothing.

    Outputs, with ``t`` the masked mean of the updated real text tokens
    (zeros for absent text) and ``W`` the output Linear to ``out_dim``:

    - ``pooled = ReLU(W t)`` ``(B, out_dim)``;
    - ``map = ReLU(W (P x + t))`` ``(B, out_dim, H, W)``, with ``P x`` the
      1x1-projected image map: the projected image map plus the broadcast
      text-attended vector, for dense heads. Sharing ``W`` and ``P`` with
      the pooled path leaves no parameter unused when only ``pooled`` is.
    - ``attention`` ``(B, heads, L_text, H * W)`` of the last layer when
      ``return_attention``; it is computed explicitly (``softmax(Q K^T /
      sqrt(d))``) on a second path that gives the same output.

    Args:
        image_dim: image channels.
        text_dim: text channels.
        embed_dims: attention width (a multiple of 4 with ``pos_embed``).
        num_heads: attention heads.
        num_layers: cross-attention layers.
        out_dim: output channels.
        dropout: dropout on attention weights and residual branches.
        pos_embed: add the 2D position encoding to the image tokens.
        init_cfg: mmengine weight-initialisation config.
    """

    input_kinds: ClassVar[FrozenSet[str]] = frozenset({MAP})

    def __init__(self, image_dim: int, text_dim: int, embed_dims: int = 128,
                 num_heads: int = 4, num_layers: int = 1, out_dim: int = 256,
                 dropout: float = 0.0, pos_embed: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(image_dim, text_dim, init_cfg=init_cfg)
        if num_layers < 1:
            raise ValueError('num_layers must be >= 1')
        if pos_embed and embed_dims % 4:
            raise ValueError('pos_embed needs embed_dims % 4 == 0, got '
                             f'{embed_dims}')
        self._out_dim = out_dim
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.pos_embed = pos_embed
        self.image_proj = nn.Linear(image_dim, embed_dims)
        self.image_norm = nn.LayerNorm(embed_dims)
        self.text_proj = nn.Linear(text_dim, embed_dims)
        self.layers = nn.ModuleList(
            _CrossAttentionLayer(embed_dims, num_heads, dropout)
            for _ in range(num_layers))
        self.out_proj = nn.Linear(embed_dims, out_dim)

    @property
    def out_dim(self) -> int:
        return self._out_dim

    def forward(self, image: ModalityFeatures, text: ModalityFeatures,
                return_attention: bool = False) -> FusionOutput:
        img_tokens = self.image_proj(image.get_tokens())  # (B, N, E)
        key_mask = image.get_mask().to(img_tokens.device)
        # A row without valid keys would make the softmax NaN.
        key_mask = key_mask | ~key_mask.any(dim=1, keepdim=True)
        key_present = image.get_present().to(img_tokens.device)
        keys = img_tokens
        if self.pos_embed:
            if image.map is not None:
                h, w = image.map.shape[-2:]
            else:
                h, w = 1, img_tokens.shape[1]
            keys = keys + sine_position_encoding_2d(
                h, w, self.embed_dims, img_tokens.device, img_tokens.dtype)
        keys = self.image_norm(keys)

        text_mask = text.get_mask() & text.get_present()[:, None]
        query = self.text_proj(text.get_tokens())  # (B, L, E)
        weights = None
        for i, layer in enumerate(self.layers):
            want = return_attention and i == len(self.layers) - 1
            query, weights = layer(query, keys, key_mask, key_present,
                                   return_attention=want)
        m = text_mask.unsqueeze(-1).to(query.dtype)
        attended = (query * m).sum(1) / m.sum(1).clamp(min=1.0)  # (B, E)
        pooled = F.relu(self.out_proj(attended))
        out_map = None
        if image.map is not None:
            b, _, h, w = image.map.shape
            fused = F.relu(self.out_proj(img_tokens + attended[:, None]))
            out_map = fused.transpose(1, 2).reshape(b, self.out_dim, h, w)
        return FusionOutput(pooled=pooled, map=out_map, attention=weights)
