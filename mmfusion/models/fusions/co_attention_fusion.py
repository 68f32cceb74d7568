"""Fusion by ViLBERT-style co-attention between the two streams."""
from __future__ import annotations

from typing import ClassVar, FrozenSet, Optional

import torch
import torch.nn.functional as F
from torch import nn

from mmfusion.registry import MODELS
from mmfusion.structures import ModalityFeatures
from ..utils.attention import (AttentionBlock, map_hw, masked_mean,
                               sine_position_encoding_2d)
from .base_fusion import MAP, BaseFusion, FusionOutput


@MODELS.register_module()
class CoAttentionFusion(BaseFusion):
    """Co-attention (ViLBERT, Lu et al. 2019): each stream attends to the
    other.

    Image map positions are projected to ``embed_dims`` (1x1), get a fixed
    2D sine position encoding and a LayerNorm; text tokens are projected to
    ``embed_dims`` and layer-normalised. Each of ``num_layers`` layers runs
    both directions in parallel, each from the previous layer's streams:

    - text tokens (queries) attend to the image positions;
    - image positions (queries) attend to the real text tokens;

    each with multi-head attention (``F.scaled_dot_product_attention``),
    residual + LayerNorm, FFN, residual + LayerNorm (separate weights per
    direction and layer). Padding tokens are never keys and are excluded
    from the text mean, so they change nothing; an absent modality's keys
    are all masked (the other stream gains nothing from it) and its stream
    is left out of the outputs (zeros).

    Outputs, with ``t`` the masked mean of the final text tokens, ``x`` the
    final image positions, ``m`` their mean and ``W`` one Linear from
    ``2 * embed_dims`` to ``out_dim``:

    - ``pooled = ReLU(W [t; m])`` ``(B, out_dim)``;
    - ``map = ReLU(W [t; x])`` ``(B, out_dim, H, W)``: each updated image
      position projected to ``out_dim`` (with the text summary; sharing
      ``W`` leaves no parameter unused when only ``pooled`` is used);
    - ``attention`` ``(B, heads, L_text, H * W)``: the last layer's
      text-over-image weights when ``return_attention`` (computed
      explicitly on a second path that gives the same output).

    Args:
        image_dim: image channels.
        text_dim: text channels.
        embed_dims: attention width (a multiple of 4 and of ``num_heads``).
        num_heads: attention heads.
        num_layers: co-attention layers (each has both directions).
        out_dim: output channels.
        dropout: dropout on attention weights and residual branches.
        ffn_ratio: FFN hidden size over ``embed_dims``.
        init_cfg: mmengine weight-initialisation config.
    """

    input_kinds: ClassVar[FrozenSet[str]] = frozenset({MAP})

    def __init__(self, image_dim: int, text_dim: int, embed_dims: int = 128,
                 num_heads: int = 4, num_layers: int = 1, out_dim: int = 256,
                 dropout: float = 0.0, ffn_ratio: int = 2,
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
        self.image_proj = nn.Linear(image_dim, embed_dims)
        self.image_norm = nn.LayerNorm(embed_dims)
        self.text_proj = nn.Linear(text_dim, embed_dims)
        self.text_norm = nn.LayerNorm(embed_dims)
        self.text_layers = nn.ModuleList(
            AttentionBlock(embed_dims, num_heads, dropout, ffn_ratio)
            for _ in range(num_layers))
        self.image_layers = nn.ModuleList(
            AttentionBlock(embed_dims, num_heads, dropout, ffn_ratio)
            for _ in range(num_layers))
        self.out_proj = nn.Linear(2 * embed_dims, out_dim)

    @property
    def out_dim(self) -> int:
        return self._out_dim

    def forward(self, image: ModalityFeatures, text: ModalityFeatures,
                return_attention: bool = False) -> FusionOutput:
        img = self.image_proj(image.get_tokens())  # (B, N, E)
        device = img.device
        image_present = image.get_present().to(device)
        image_mask = image.get_mask().to(device)
        image_keys = image_mask & image_present[:, None]
        h, w = map_hw(image, img.shape[1])
        img = self.image_norm(img + sine_position_encoding_2d(
            h, w, self.embed_dims, device, img.dtype))
        text_mask = (text.get_mask()
                     & text.get_present()[:, None]).to(device)
        txt = self.text_norm(self.text_proj(text.get_tokens()))  # (B, L, E)

        weights = None
        last = len(self.text_layers) - 1
        for i, (t_layer, i_layer) in enumerate(zip(self.text_layers,
                                                   self.image_layers)):
            want = return_attention and i == last
            new_txt, weights = t_layer(txt, img, image_keys,
                                       return_attention=want)
            img, _ = i_layer(img, txt, text_mask)
            txt = new_txt

        t = masked_mean(txt, text_mask)  # (B, E), zeros for absent text
        img = img * image_present[:, None, None].to(img.dtype)
        pooled = F.relu(self.out_proj(
            torch.cat((t, masked_mean(img, image_mask)), -1)))
        out_map = None
        if image.map is not None:
            b, n = img.shape[:2]
            fused = F.relu(self.out_proj(
                torch.cat((t[:, None].expand(-1, n, -1), img), -1)))
            out_map = fused.transpose(1, 2).reshape(b, self.out_dim, h, w)
        return FusionOutput(pooled=pooled, map=out_map, attention=weights)
