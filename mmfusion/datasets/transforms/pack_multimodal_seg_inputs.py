"""Pack a loaded (image, phrase, mask) sample into segmentation inputs."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmfusion.registry import TRANSFORMS


@TRANSFORMS.register_module()
class PackMultimodalSegInputs(BaseTransform):
    """Pack the image, the phrase and the mask (mmseg's ``PackSegInputs``
    with the text beside the image).

    Output::

        {'inputs': {'img': uint8 tensor (3, H, W), 'text': str or None},
         'data_samples': SegDataSample}

    The data sample gets ``gt_sem_seg`` (a ``PixelData`` of a ``(1, H, W)``
    long tensor) from ``results['gt_seg_map']`` (mmseg's
    ``LoadAnnotations``) when there is one, ``gt_label`` (a ``(1,)`` long
    tensor) when ``results['gt_label']`` is set (multi-task data), and the
    ``meta_keys`` present as metainfo (``text`` among them, for the
    visualiser). ``image_present``/``text_present`` flags are copied to the
    inputs as for :class:`PackMultimodalInputs`.

    Args:
        meta_keys: keys copied, when present, into the metainfo.
    """

    def __init__(self,
                 meta_keys: Sequence[str] = (
                     'img_path', 'seg_map_path', 'ori_shape', 'img_shape',
                     'pad_shape', 'scale_factor', 'flip', 'flip_direction',
                     'reduce_zero_label', 'text', 'phrase_type',
                     'sample_idx')) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        img = results.get('img')
        if img is not None:
            img = np.asarray(img)
            if img.ndim < 3:
                img = np.expand_dims(img, -1)
            img = torch.from_numpy(np.ascontiguousarray(
                img.transpose(2, 0, 1)))
        inputs = {'img': img, 'text': results.get('text')}
        for key in ('image_present', 'text_present'):
            if key in results:
                inputs[key] = bool(results[key])

        sample = SegDataSample()
        seg = results.get('gt_seg_map')
        if seg is not None:
            seg = np.asarray(seg)
            if seg.ndim != 2:
                raise ValueError('PackMultimodalSegInputs expects a 2D '
                                 f'gt_seg_map, got shape {seg.shape}')
            sample.gt_sem_seg = PixelData(
                data=torch.from_numpy(seg[None].astype(np.int64)))
        if results.get('gt_label') is not None:
            sample.gt_label = torch.tensor([int(results['gt_label'])],
                                           dtype=torch.long)
        sample.set_metainfo(
            {k: results[k] for k in self.meta_keys if k in results})
        return {'inputs': inputs, 'data_samples': sample}

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'
