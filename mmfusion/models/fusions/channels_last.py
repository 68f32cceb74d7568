"""Shared input/output plumbing of the per-position vector fusion blocks.

Sum, mean, weighted, gated and bilinear fusion compute the same thing on a
vector pair and at every position of a map (the text's pooled vector is the
same at every position). Working channels-last with the text vector shaped
``(B, 1, 1, C_t)`` lets ``nn.Linear`` act as a 1x1 convolution on the image
and broadcasting stand in for tiling the text, so one code path serves both
input kinds.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from mmfusion.structures import ModalityFeatures
from .base_fusion import FusionOutput


@dataclass
class ChannelsLast:
    """Both modalities laid out channels-last with broadcastable shapes.

    Attributes:
        image: ``(B, C_i)`` (vector input) or ``(B, H, W, C_i)`` (map).
        text: ``(B, C_t)`` or ``(B, 1, 1, C_t)``: the text's pooled vector.
        image_present: ``(B, 1)`` or ``(B, 1, 1, 1)``, 1.0 where the sample
            has an image, in the image features' dtype.
        text_present: as ``image_present``, for the text.
        is_map: whether the image came as a map.
    """

    image: Tensor
    text: Tensor
    image_present: Tensor
    text_present: Tensor
    is_map: bool

    def per_sample(self, values: Tensor) -> Tensor:
        """View ``(B,)`` per-sample values so they broadcast like the
        presence flags."""
        return values.view(-1, *[1] * (self.image.dim() - 1))


def channels_last(image: ModalityFeatures,
                  text: ModalityFeatures) -> ChannelsLast:
    """Lay out ``image`` (map or vector) and the text's pooled vector.

    Only ``text.get_pooled()`` is read, so padding tokens never matter.
    """
    txt = text.get_pooled()
    if image.map is None:
        img = image.get_pooled()
    else:
        img = image.map.permute(0, 2, 3, 1)
        txt = txt[:, None, None, :]
    shape = (-1, *[1] * (img.dim() - 1))
    return ChannelsLast(
        image=img, text=txt,
        image_present=image.get_present().to(img.dtype).view(shape),
        text_present=text.get_present().to(img.dtype).view(shape),
        is_map=image.map is not None)


def to_output(fused: Tensor, is_map: bool) -> FusionOutput:
    """``(B, C)`` -> ``pooled``; ``(B, H, W, C)`` -> ``map`` ``(B, C, H, W)``
    and ``pooled`` = its spatial mean."""
    if not is_map:
        return FusionOutput(pooled=fused)
    out_map = fused.permute(0, 3, 1, 2)
    return FusionOutput(pooled=out_map.mean(dim=(2, 3)), map=out_map)


def vector_inputs(block: str, image: ModalityFeatures,
                  text: ModalityFeatures) -> ChannelsLast:
    """Pooled image and text vectors for a block that accepts only
    vectors; a map is refused (the model passes vectors to such blocks,
    see :func:`~mmfusion.models.fusions.check_input_kind`)."""
    if image.map is not None:
        raise ValueError(
            f'{block} fuses pooled image vectors only, got a '
            f'{tuple(image.map.shape)} map: build the model with '
            "fusion_input='vector' (the default for this block) or pass "
            'ModalityFeatures(pooled=...)')
    return channels_last(image, text)
