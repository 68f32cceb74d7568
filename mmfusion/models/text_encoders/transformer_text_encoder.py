"""A small Transformer text encoder."""
from __future__ import annotations

from typing import Optional

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmfusion.registry import MODELS
from mmfusion.structures import ModalityFeatures
from .rnn_text_encoder import check_token_ids, effective_mask


@MODELS.register_module()
class TransformerTextEncoder(BaseModule):
    """Embedding + learned positions + pre-norm Transformer encoder layers.

    Padding tokens are excluded as keys (``src_key_padding_mask``) and from
    the pooled vector. A row without real tokens (absent text) would make
    every key masked and the softmax NaN, so its first position is unmasked
    for the computation and its outputs are zeroed afterwards.

    Args:
        vocab_size: rows of the embedding table; id 0 is padding.
        embed_dims: model width (= ``out_dim``).
        num_layers: encoder layers.
        num_heads: attention heads.
        ffn_dims: hidden size of the feed-forward blocks.
        max_length: longest text (learned positions); the tokenizer's
            ``max_length`` must not exceed it.
        dropout: dropout in the layers and on the embeddings.
        pooling: ``'mean'`` (masked mean of the tokens) or ``'cls'`` (a
            learned token prepended to the text; not part of ``tokens``).
        init_cfg: mmengine weight-initialisation config.

    Forward: ``ids`` ``(B, L)`` long, ``mask`` ``(B, L)`` bool (True = real
    token), ``present`` ``(B,)`` bool or None -> :class:`ModalityFeatures`
    with ``tokens`` ``(B, L, embed_dims)``, ``mask``, ``pooled`` ``(B,
    embed_dims)`` and ``present``; absent samples get zero features.
    """

    def __init__(self, vocab_size: int, embed_dims: int = 128,
                 num_layers: int = 2, num_heads: int = 4,
                 ffn_dims: int = 256, max_length: int = 64,
                 dropout: float = 0.0, pooling: str = 'mean',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if pooling not in ('mean', 'cls'):
            raise ValueError(f"pooling must be 'mean' or 'cls', got "
                             f'{pooling!r}')
        self.vocab_size = vocab_size
        self.embed_dims = embed_dims
        self.max_length = max_length
        self.pooling = pooling
        self.embed = nn.Embedding(vocab_size, embed_dims, padding_idx=0)
        self.pos_embed = nn.Parameter(torch.zeros(1, max_length, embed_dims))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if pooling == 'cls':
            self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
            nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            embed_dims, num_heads, dim_feedforward=ffn_dims, dropout=dropout,
            batch_first=True, norm_first=True)
        # Pre-norm layers leave the output unnormalised: a final LayerNorm.
        # Nested tensors would drop padded positions in eval mode only.
        self.encoder = nn.TransformerEncoder(
            layer, num_layers, norm=nn.LayerNorm(embed_dims),
            enable_nested_tensor=False)

    @property
    def out_dim(self) -> int:
        """Channels of ``tokens`` and ``pooled``."""
        return self.embed_dims

    def forward(self, ids: Tensor, mask: Tensor,
                present: Optional[Tensor] = None) -> ModalityFeatures:
        check_token_ids(ids, self.vocab_size, type(self).__name__)
        b, length = ids.shape
        if length > self.max_length:
            raise ValueError(
                f'texts of {length} tokens exceed the {type(self).__name__} '
                f'max_length={self.max_length}: raise max_length or lower '
                "the tokenizer's max_length")
        mask = effective_mask(ids, mask, present)
        valid = mask.any(dim=1)
        x = self.embed(ids) + self.pos_embed[:, :length]
        attend = mask.clone()
        if self.pooling == 'cls':
            x = torch.cat((self.cls_token.expand(b, -1, -1), x), dim=1)
            attend = torch.cat((torch.ones_like(attend[:, :1]), attend), 1)
        else:
            attend[:, 0] |= ~valid
        x = self.encoder(self.dropout(x), src_key_padding_mask=~attend)
        if self.pooling == 'cls':
            pooled, tokens = x[:, 0], x[:, 1:]
        else:
            tokens = x
        tokens = tokens * mask.unsqueeze(-1).to(tokens.dtype)
        if self.pooling == 'mean':
            denom = mask.sum(dim=1, keepdim=True).clamp(min=1).to(tokens.dtype)
            pooled = tokens.sum(dim=1) / denom
        pooled = pooled * valid.unsqueeze(-1).to(pooled.dtype)
        return ModalityFeatures(tokens=tokens, mask=mask, pooled=pooled,
                                present=valid)
