"""A recurrent (GRU / LSTM) text encoder."""
from __future__ import annotations

from typing import Optional

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from mmfusion.registry import MODELS
from mmfusion.structures import ModalityFeatures


def check_token_ids(ids: Tensor, vocab_size: int, name: str) -> None:
    """Fail clearly when ids fall outside the embedding table."""
    if ids.numel() and (int(ids.max()) >= vocab_size or int(ids.min()) < 0):
        raise ValueError(
            f'{name} got token id {int(ids.max())} but has vocab_size='
            f'{vocab_size}: set the text encoder\'s vocab_size to at least '
            'the tokenizer\'s max_vocab_size')


def effective_mask(ids: Tensor, mask: Tensor,
                   present: Optional[Tensor]) -> Tensor:
    """``(B, L)`` bool mask with the rows of absent samples cleared."""
    mask = mask.to(device=ids.device, dtype=torch.bool)
    if present is not None:
        mask = mask & present.to(device=ids.device,
                                 dtype=torch.bool).unsqueeze(1)
    return mask


@MODELS.register_module()
class RNNTextEncoder(BaseModule):
    """Embedding + GRU/LSTM over the real tokens of each text.

    Sequences are packed (``pack_padded_sequence``), so padding never
    changes the output. Texts must be right-padded (real tokens first), as
    :class:`~mmfusion.models.tokenizers.VocabTokenizer` makes them.

    Args:
        vocab_size: rows of the embedding table (>= the tokenizer's
            ``max_vocab_size``); id 0 is padding.
        embed_dims: size of the word embeddings.
        hidden_dims: hidden size of each direction.
        num_layers: stacked recurrent layers.
        rnn_type: ``'gru'`` or ``'lstm'``.
        bidirectional: run a backward RNN too.
        dropout: dropout on the embeddings and between layers.
        pooling: ``'last'`` (final hidden state of each direction of the top
            layer, concatenated), ``'mean'`` or ``'max'`` over real tokens.
        init_cfg: mmengine weight-initialisation config.

    Forward: ``ids`` ``(B, L)`` long, ``mask`` ``(B, L)`` bool (True = real
    token), ``present`` ``(B,)`` bool or None -> :class:`ModalityFeatures`
    with ``tokens`` ``(B, L, out_dim)``, ``mask`` ``(B, L)``, ``pooled``
    ``(B, out_dim)``, ``present`` ``(B,)``. Absent samples (``present``
    False or no real token) get zero features and an all-False mask.
    """

    def __init__(self, vocab_size: int, embed_dims: int = 128,
                 hidden_dims: int = 128, num_layers: int = 1,
                 rnn_type: str = 'gru', bidirectional: bool = True,
                 dropout: float = 0.0, pooling: str = 'last',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        rnn_types = {'gru': nn.GRU, 'lstm': nn.LSTM}
        if rnn_type not in rnn_types:
            raise ValueError(f'rnn_type must be one of {sorted(rnn_types)}, '
                             f'got {rnn_type!r}')
        if pooling not in ('last', 'mean', 'max'):
            raise ValueError("pooling must be 'last', 'mean' or 'max', got "
                             f'{pooling!r}')
        self.vocab_size = vocab_size
        self.rnn_type = rnn_type
        self.bidirectional = bidirectional
        self.pooling = pooling
        self.embed = nn.Embedding(vocab_size, embed_dims, padding_idx=0)
        self.dropout = nn.Dropout(dropout)
        # nn.GRU/LSTM only apply dropout between layers (and warn otherwise).
        self.rnn = rnn_types[rnn_type](
            embed_dims, hidden_dims, num_layers=num_layers, batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0)
        self._out_dim = hidden_dims * (2 if bidirectional else 1)

    @property
    def out_dim(self) -> int:
        """Channels of ``tokens`` and ``pooled``."""
        return self._out_dim

    def forward(self, ids: Tensor, mask: Tensor,
                present: Optional[Tensor] = None) -> ModalityFeatures:
        check_token_ids(ids, self.vocab_size, type(self).__name__)
        b, length = ids.shape
        mask = effective_mask(ids, mask, present)
        lengths = mask.sum(dim=1)
        valid = lengths > 0
        x = self.dropout(self.embed(ids))
        # Empty rows are run with length 1 (packing rejects 0) and zeroed.
        packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(),
                                      batch_first=True, enforce_sorted=False)
        out, hidden = self.rnn(packed)
        if self.rnn_type == 'lstm':
            hidden = hidden[0]
        tokens, _ = pad_packed_sequence(out, batch_first=True,
                                        total_length=length)
        tokens = tokens * mask.unsqueeze(-1).to(tokens.dtype)
        if self.pooling == 'last':
            # hidden: (num_layers * directions, B, H); the top layer's last.
            dirs = 2 if self.bidirectional else 1
            pooled = torch.cat(list(hidden[-dirs:]), dim=-1)
        elif self.pooling == 'mean':
            denom = lengths.clamp(min=1).unsqueeze(-1).to(tokens.dtype)
            pooled = tokens.sum(dim=1) / denom
        else:
            pooled = tokens.masked_fill(~mask.unsqueeze(-1),
                                        float('-inf')).amax(dim=1)
            pooled = torch.where(valid.unsqueeze(-1), pooled,
                                 torch.zeros_like(pooled))
        pooled = pooled * valid.unsqueeze(-1).to(pooled.dtype)
        return ModalityFeatures(tokens=tokens, mask=mask, pooled=pooled,
                                present=valid)
