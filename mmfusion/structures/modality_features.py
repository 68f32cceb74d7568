"""The features one modality hands to a fusion block."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor


@dataclass
class ModalityFeatures:
    """Features of one modality for a batch of ``B`` samples.

    An encoder fills what it has; the properties derive the rest, so a fusion
    block can ask for the kind it needs.

    Attributes:
        pooled: ``(B, C)`` one vector per sample.
        tokens: ``(B, N, C)`` a sequence per sample (text tokens, or image
            positions in row-major order).
        mask: ``(B, N)`` bool, True where a token is real (not padding).
        map: ``(B, C, H, W)`` a feature map (image modalities only).
        present: ``(B,)`` bool, False where the sample has no input for this
            modality (missing text, dropped modality). Features of absent
            samples are zeros and a block must not let them leak NaNs.
        pixels: ``(B, 3, H', W')`` the preprocessed image itself (image
            modalities, when the model passes it; zeros for absent images),
            for blocks that look at full resolution (e.g. FiLM's object
            counts with ``count_source='pixels'``).
    """

    pooled: Optional[Tensor] = None
    tokens: Optional[Tensor] = None
    mask: Optional[Tensor] = None
    map: Optional[Tensor] = None
    present: Optional[Tensor] = None
    pixels: Optional[Tensor] = None

    @classmethod
    def from_map(cls, fmap: Tensor,
                 present: Optional[Tensor] = None) -> 'ModalityFeatures':
        """Image features from a ``(B, C, H, W)`` map; pooled = spatial mean."""
        b, c, h, w = fmap.shape
        if present is None:
            present = torch.ones(b, dtype=torch.bool, device=fmap.device)
        return cls(map=fmap, present=present)

    @property
    def batch_size(self) -> int:
        for t in (self.pooled, self.tokens, self.map):
            if t is not None:
                return t.shape[0]
        raise ValueError('ModalityFeatures holds no tensor')

    @property
    def dim(self) -> int:
        if self.map is not None:
            return self.map.shape[1]
        if self.tokens is not None:
            return self.tokens.shape[-1]
        assert self.pooled is not None, 'ModalityFeatures holds no tensor'
        return self.pooled.shape[-1]

    def get_tokens(self) -> Tensor:
        """``(B, N, C)``: the tokens, or the map flattened row-major."""
        if self.tokens is not None:
            return self.tokens
        if self.map is not None:
            return self.map.flatten(2).transpose(1, 2)
        assert self.pooled is not None
        return self.pooled.unsqueeze(1)

    def get_mask(self) -> Tensor:
        """``(B, N)`` bool validity mask matching :meth:`get_tokens`."""
        if self.mask is not None and self.tokens is not None:
            return self.mask
        tokens = self.get_tokens()
        return torch.ones(tokens.shape[:2], dtype=torch.bool,
                          device=tokens.device)

    def get_pooled(self) -> Tensor:
        """``(B, C)``: the pooled vector, or the masked mean of the tokens."""
        if self.pooled is not None:
            return self.pooled
        if self.map is not None:
            return self.map.mean(dim=(2, 3))
        mask = self.get_mask().unsqueeze(-1).to(self.tokens.dtype)
        return (self.tokens * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    def get_present(self) -> Tensor:
        """``(B,)`` bool presence flags (all True when unset)."""
        if self.present is not None:
            return self.present
        ref = self.pooled if self.pooled is not None else (
            self.tokens if self.tokens is not None else self.map)
        return torch.ones(ref.shape[0], dtype=torch.bool, device=ref.device)
