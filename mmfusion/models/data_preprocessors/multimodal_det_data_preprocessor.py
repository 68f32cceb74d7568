"""Batch images and tokenise phrases for a text-conditioned detector."""
from __future__ import annotations

from typing import Optional, Sequence, Union

from mmengine.structures import BaseDataElement

from mmfusion.models.tokenizers import VocabTokenizer
from mmfusion.registry import MODELS

from .multimodal_data_preprocessor import MultimodalDataPreprocessor


@MODELS.register_module()
class MultimodalDetDataPreprocessor(MultimodalDataPreprocessor):
    """:class:`MultimodalDataPreprocessor` for ``DetDataSample`` batches.

    Images and texts are batched as there (normalise, pad at the bottom and
    right to a multiple of ``pad_size_divisor``, tokenise, presence flags),
    so boxes keep their coordinates; then, as mmdet's
    ``DetDataPreprocessor`` does, each data sample gets
    ``batch_input_shape`` (the padded batch size) and its own ``pad_shape``
    (its ``img_shape`` rounded up to ``pad_size_divisor``), and box-type
    ground truth (``HorizontalBoxes``) becomes plain ``(N, 4)`` tensors
    when ``boxtype2tensor``.

    Args:
        pad_size_divisor: padded sizes are multiples of it (32 suits a
            stride-32 backbone).
        boxtype2tensor: convert box-type ground truth to tensors.
        mean, std, bgr_to_rgb, pad_value, tokenizer, non_blocking: as
            :class:`MultimodalDataPreprocessor`.
    """

    # The annotations are edited in place (boxes, padding): work on copies.
    copy_data_samples = True

    def __init__(self,
                 mean: Optional[Sequence[float]] = (123.675, 116.28, 103.53),
                 std: Optional[Sequence[float]] = (58.395, 57.12, 57.375),
                 bgr_to_rgb: bool = True,
                 pad_size_divisor: int = 32,
                 pad_value: Union[float, int] = 0,
                 tokenizer: Union[dict, VocabTokenizer, None] = None,
                 boxtype2tensor: bool = True,
                 non_blocking: bool = False) -> None:
        super().__init__(mean=mean, std=std, bgr_to_rgb=bgr_to_rgb,
                         pad_size_divisor=pad_size_divisor,
                         pad_value=pad_value, tokenizer=tokenizer,
                         non_blocking=non_blocking)
        self.boxtype2tensor = boxtype2tensor

    def forward(self, data: dict, training: bool = False) -> dict:
        """Batch, normalise and tokenise; see the class docstring."""
        out = super().forward(data, training)
        samples = out['data_samples']
        if samples:
            for sample in samples:
                if not isinstance(sample, BaseDataElement):
                    continue
                shape = sample.metainfo.get('img_shape')
                if shape is not None:
                    sample.set_metainfo(dict(
                        pad_shape=self._padded_size(*shape[:2])))
            if self.boxtype2tensor:
                # Imported here, not at the top: importing this module (as
                # ``import mmfusion.models`` does) must not load mmdet; a
                # detection run has loaded it already with its detector.
                from mmdet.models.utils import samplelist_boxtype2tensor
                samplelist_boxtype2tensor(samples)
        return out
