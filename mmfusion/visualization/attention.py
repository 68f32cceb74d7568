"""Attention of the text over image positions, as a heat-map on the image.

A fusion block that attends (cross-attention, co-attention, single-stream)
gives, per sample, weights of shape ``(heads, L_text, H * W)``: for every
text token, a distribution over the ``H x W`` positions of the image
feature map it attended to (``MultimodalClassifier`` stores them on the
data sample as ``attention`` with the grid size in ``attention_hw``).

:func:`attention_grid` reduces them to one ``(H, W)`` map (mean over heads
and over the real text tokens, or the tokens asked for);
:func:`grid_to_image` brings that map onto the original image (the feature
grid covers the padded batch input, of which the sample's image is the
top-left ``img_shape``); :func:`overlay_heatmap` colours it and blends it
with the image.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch

ArrayLike = Union[np.ndarray, torch.Tensor]


def _to_numpy(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def attention_grid(attention: ArrayLike, hw: Sequence[int],
                   num_tokens: Optional[int] = None,
                   token_index: Union[int, Sequence[int], None] = None
                   ) -> np.ndarray:
    """One ``(H, W)`` map of how much the text attended to each position.

    Args:
        attention: ``(heads, L, H * W)``, ``(L, H * W)`` or ``(H * W,)``
            weights (rows over image positions).
        hw: the feature grid's ``(H, W)``; ``H * W`` must be the last size.
        num_tokens: real (unpadded) text tokens; rows past it are padding of
            a batch and are left out.
        token_index: the token(s) to show (indices among the real tokens);
            default: the mean over all real tokens.

    Returns:
        ``(H, W)`` float32, the mean over heads and the chosen tokens.
    """
    att = _to_numpy(attention)
    h, w = int(hw[0]), int(hw[1])
    if att.shape[-1] != h * w:
        raise ValueError(f'attention has {att.shape[-1]} image positions, '
                         f'not H * W = {h} * {w}')
    if att.ndim == 1:
        att = att[None, None]
    elif att.ndim == 2:
        att = att[None]
    elif att.ndim != 3:
        raise ValueError('attention must be (heads, L, H*W), (L, H*W) or '
                         f'(H*W,), got shape {att.shape}')
    if num_tokens is not None and 0 < num_tokens < att.shape[1]:
        att = att[:, :num_tokens]
    if token_index is not None:
        rows = [token_index] if isinstance(token_index, int) else list(
            token_index)
        bad = [r for r in rows if not -att.shape[1] <= r < att.shape[1]]
        if bad:
            raise IndexError(f'token_index {bad} out of range for '
                             f'{att.shape[1]} text tokens')
        att = att[:, rows]
    return att.mean(axis=(0, 1)).reshape(h, w).astype(np.float32)


def grid_to_image(grid: np.ndarray, out_shape: Sequence[int],
                  img_shape: Optional[Sequence[int]] = None,
                  pad_shape: Optional[Sequence[int]] = None) -> np.ndarray:
    """Resize a feature-grid map onto an image of ``out_shape`` (H, W).

    The grid covers the padded batch input (``pad_shape``, default
    ``img_shape``); the sample's own image is its top-left ``img_shape``
    part (after the pipeline's resizing), which is cropped and then resized
    to ``out_shape`` (usually the original image's). Bilinear, so the
    picture's peak stays where the grid's is.
    """
    grid = np.asarray(grid, dtype=np.float32)
    out_h, out_w = int(out_shape[0]), int(out_shape[1])
    if img_shape is None:
        img_shape = out_shape
    if pad_shape is None:
        pad_shape = img_shape
    pad_h, pad_w = int(pad_shape[0]), int(pad_shape[1])
    full = cv2.resize(grid, (pad_w, pad_h), interpolation=cv2.INTER_LINEAR)
    crop = full[:min(int(img_shape[0]), pad_h), :min(int(img_shape[1]),
                                                     pad_w)]
    return cv2.resize(crop, (out_w, out_h), interpolation=cv2.INTER_LINEAR)


def normalize_heatmap(heat: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1] (a constant map becomes zeros)."""
    heat = np.asarray(heat, dtype=np.float32)
    lo, hi = float(heat.min()), float(heat.max())
    if hi - lo < 1e-12:
        return np.zeros_like(heat)
    return (heat - lo) / (hi - lo)


def overlay_heatmap(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5,
                    colormap: int = cv2.COLORMAP_JET) -> np.ndarray:
    """Blend a [0, 1] heat-map (same H, W as ``image``) over an RGB image.

    Jet colour map: high attention is red, low is blue.
    """
    if heat.shape[:2] != image.shape[:2]:
        raise ValueError(f'heat-map {heat.shape[:2]} and image '
                         f'{image.shape[:2]} differ in size')
    heat8 = np.clip(heat * 255.0, 0, 255).astype(np.uint8)
    colour = cv2.applyColorMap(heat8, colormap)[..., ::-1]  # BGR -> RGB
    out = (1.0 - alpha) * image.astype(np.float32) + alpha * colour
    return np.clip(out, 0, 255).astype(np.uint8)


def attention_heatmap(attention: ArrayLike, hw: Sequence[int],
                      out_shape: Sequence[int],
                      img_shape: Optional[Sequence[int]] = None,
                      pad_shape: Optional[Sequence[int]] = None,
                      num_tokens: Optional[int] = None,
                      token_index: Union[int, Sequence[int], None] = None
                      ) -> np.ndarray:
    """:func:`attention_grid` -> :func:`grid_to_image` -> [0, 1]."""
    grid = attention_grid(attention, hw, num_tokens, token_index)
    return normalize_heatmap(grid_to_image(grid, out_shape, img_shape,
                                           pad_shape))


def peak_position(heat: np.ndarray) -> Tuple[int, int]:
    """``(row, col)`` of the largest value."""
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(heat)),
                                                  heat.shape[:2]))
