"""Masked multi-head attention, a Transformer layer and position encodings.

Shared by the attention-based fusion blocks. Attention is computed with
``F.scaled_dot_product_attention``; on request the weights are computed
explicitly (``softmax(Q K^T / sqrt(d))``) on a second path that gives the
same output, so they can be returned (e.g. for visualisation).
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


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


class MaskedMultiheadAttention(nn.Module):
    """Multi-head attention honouring a key padding mask.

    ``Q, K, V`` are linear projections of ``query``, ``key`` and ``value``
    (``value`` defaults to ``key``); the heads' results are concatenated and
    projected by ``out_proj``. ``F.scaled_dot_product_attention`` computes
    the attention unless ``return_attention``, which computes the weights
    explicitly and returns them (same output up to float rounding).

    A sample whose keys are all masked (absent modality) would make the
    softmax NaN: it is computed with every key unmasked, then its output
    (after ``out_proj``, so nothing, not even the bias, is added) and its
    weights are zeroed. It thus attends to nothing, with finite gradients.

    Args:
        embed_dims: width of queries, keys, values and the output.
        num_heads: heads; must divide ``embed_dims``.
        dropout: dropout on the attention weights (training only).
    """

    def __init__(self, embed_dims: int, num_heads: int,
                 dropout: float = 0.0) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims={embed_dims} is not divisible by '
                             f'num_heads={num_heads}')
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.head_dims = embed_dims // num_heads
        self.dropout_p = dropout
        self.q_proj = nn.Linear(embed_dims, embed_dims)
        self.k_proj = nn.Linear(embed_dims, embed_dims)
        self.v_proj = nn.Linear(embed_dims, embed_dims)
        self.out_proj = nn.Linear(embed_dims, embed_dims)

    def _heads(self, x: Tensor) -> Tensor:
        """``(B, N, E)`` -> ``(B, heads, N, E / heads)``."""
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, self.head_dims).transpose(1, 2)

    def forward(self, query: Tensor, key: Tensor,
                value: Optional[Tensor] = None,
                key_mask: Optional[Tensor] = None,
                return_attention: bool = False
                ) -> Tuple[Tensor, Optional[Tensor]]:
        """Attend.

        Args:
            query: ``(B, Nq, E)``.
            key: ``(B, Nk, E)``.
            value: ``(B, Nk, E)``; ``key`` when None.
            key_mask: ``(B, Nk)`` bool, True at keys that may be attended;
                None: all may.
            return_attention: compute the weights explicitly and return them.

        Returns:
            The output ``(B, Nq, E)`` and the weights ``(B, heads, Nq, Nk)``
            (zero at masked keys; rows sum to 1, or are all zero for a
            sample without valid keys) or None.
        """
        value = key if value is None else value
        b, nq, e = query.shape
        q = self._heads(self.q_proj(query))
        k = self._heads(self.k_proj(key))
        v = self._heads(self.v_proj(value))
        attn_mask = has_key = None
        if key_mask is not None:
            key_mask = key_mask.to(device=query.device, dtype=torch.bool)
            has_key = key_mask.any(dim=-1)  # (B,)
            safe = key_mask | ~has_key[:, None]
            attn_mask = safe[:, None, None, :]  # (B, 1, 1, Nk), True = keep
        dropout_p = self.dropout_p if self.training else 0.0
        weights = None
        if return_attention:
            scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dims)
            if attn_mask is not None:
                scores = scores.masked_fill(~attn_mask, float('-inf'))
            weights = scores.softmax(dim=-1)
            out = F.dropout(weights, dropout_p, self.training) @ v
        else:
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)
        out = self.out_proj(out.transpose(1, 2).reshape(b, nq, e))
        if has_key is not None:
            out = out * has_key[:, None, None].to(out.dtype)
            if weights is not None:
                weights = weights * has_key[:, None, None, None].to(
                    weights.dtype)
        return out, weights


class AttentionBlock(nn.Module):
    """Attention + residual + LayerNorm, then FFN + residual + LayerNorm.

    Cross-attention when ``key`` is given (queries attend to it), else
    self-attention over the queries. Post-norm (``x = LN(x + f(x))``, as in
    BERT) by default; with ``norm_first`` pre-norm (``x = x + f(LN(x))``,
    the caller adds a final LayerNorm; keys given for cross-attention are
    used as they are).

    Args:
        embed_dims: model width.
        num_heads: attention heads.
        dropout: dropout on attention weights and residual branches.
        ffn_ratio: FFN hidden size over ``embed_dims``.
        norm_first: pre-norm instead of post-norm.
    """

    def __init__(self, embed_dims: int, num_heads: int,
                 dropout: float = 0.0, ffn_ratio: int = 2,
                 norm_first: bool = False) -> None:
        super().__init__()
        self.norm_first = norm_first
        self.attn = MaskedMultiheadAttention(embed_dims, num_heads, dropout)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.ffn = nn.Sequential(
            nn.Linear(embed_dims, ffn_ratio * embed_dims),
            nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(ffn_ratio * embed_dims, embed_dims))
        self.norm2 = nn.LayerNorm(embed_dims)
        self.dropout = nn.Dropout(dropout)

    def forward(self, query: Tensor, key: Optional[Tensor] = None,
                key_mask: Optional[Tensor] = None,
                return_attention: bool = False
                ) -> Tuple[Tensor, Optional[Tensor]]:
        """One layer: ``query`` ``(B, Nq, E)``, ``key`` ``(B, Nk, E)`` or
        None (self-attention), ``key_mask`` ``(B, Nk)`` bool (True = may be
        attended) -> updated queries and the weights (see
        :class:`MaskedMultiheadAttention`)."""
        if self.norm_first:
            x = self.norm1(query)
            kv = x if key is None else key
            attn, weights = self.attn(x, kv, key_mask=key_mask,
                                      return_attention=return_attention)
            x = query + self.dropout(attn)
            x = x + self.dropout(self.ffn(self.norm2(x)))
            return x, weights
        kv = query if key is None else key
        attn, weights = self.attn(query, kv, key_mask=key_mask,
                                  return_attention=return_attention)
        x = self.norm1(query + self.dropout(attn))
        x = self.norm2(x + self.dropout(self.ffn(x)))
        return x, weights


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """``(B, N, C)`` mean over the tokens where ``mask`` ``(B, N)`` is True
    (zeros for a sample without any)."""
    m = mask.unsqueeze(-1).to(x.dtype)
    return (x * m).sum(1) / m.sum(1).clamp(min=1.0)


def map_hw(features, num_tokens: int) -> Tuple[int, int]:
    """``(H, W)`` of a :class:`ModalityFeatures`' map, else ``(1, N)``."""
    if features.map is not None:
        return tuple(features.map.shape[-2:])
    return 1, num_tokens
