"""The image+text preprocessor for segmentation batches (masks padded too)."""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.structures import PixelData

from mmfusion.registry import MODELS

from .multimodal_data_preprocessor import MultimodalDataPreprocessor


@MODELS.register_module()
class MultimodalSegDataPreprocessor(MultimodalDataPreprocessor):
    """:class:`MultimodalDataPreprocessor` for ``SegDataSample`` batches.

    Images are normalised, padded at the bottom and right and texts
    tokenised exactly as for classification; then each sample's
    ``gt_sem_seg`` (when it has one) is padded the same way with
    ``seg_pad_val`` (ignored by the loss and the metric), and its metainfo
    gets ``padding_size`` ``(left, right, top, bottom)`` (what mmseg's
    segmentors crop off before resizing a prediction back to
    ``ori_shape``) besides ``batch_input_shape`` and ``pad_shape``. A mask
    whose size is not its image's (a test mask kept at the original size)
    is left as it is.

    Args:
        seg_pad_val: value of padded mask pixels.
        **kwargs: :class:`MultimodalDataPreprocessor` arguments.
    """

    # The annotations are edited in place (boxes, padding): work on copies.
    copy_data_samples = True

    def __init__(self, seg_pad_val: int = 255, **kwargs) -> None:
        super().__init__(**kwargs)
        self.seg_pad_val = int(seg_pad_val)

    @staticmethod
    def _image_sizes(imgs, batch_size: int
                     ) -> List[Optional[Tuple[int, int]]]:
        if isinstance(imgs, torch.Tensor):
            h, w = imgs.shape[-2:]
            return [(int(h), int(w))] * batch_size
        if imgs is None:
            return [None] * batch_size
        return [None if im is None else (int(im.shape[-2]), int(im.shape[-1]))
                for im in imgs]

    def forward(self, data: dict, training: bool = False) -> dict:
        inputs = data.get('inputs') or {}
        batch_size = self._batch_size(inputs, data.get('data_samples'))
        sizes = self._image_sizes(inputs.get('img'), batch_size)
        out = super().forward(data, training)
        samples = out['data_samples']
        if samples is None:
            return out
        pad_h, pad_w = out['inputs']['img'].shape[-2:]
        for sample, size in zip(samples, sizes):
            h, w = size if size is not None else (pad_h, pad_w)
            padding = (0, int(pad_w - w), 0, int(pad_h - h))
            sample.set_metainfo(dict(padding_size=padding))
            if 'gt_sem_seg' not in sample:
                continue
            seg = sample.gt_sem_seg.data
            # Training masks are padded with their image (the loss stacks
            # them); evaluation masks stay as they are: the prediction is
            # cropped and resized back to ori_shape to meet them, as in
            # mmseg's SegDataPreProcessor.
            if training and (h, w) != (pad_h, pad_w):
                if tuple(seg.shape[-2:]) != (h, w):
                    raise ValueError(
                        f'a training mask of {tuple(seg.shape[-2:])} does '
                        f'not match its image of {(h, w)}: resize masks in '
                        'the same transforms as the images')
                seg = F.pad(seg, padding, value=self.seg_pad_val)
                sample.gt_sem_seg = PixelData(data=seg)
        return out
