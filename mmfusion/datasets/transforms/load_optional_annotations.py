"""mmseg's LoadAnnotations for samples that may have no mask."""
from __future__ import annotations

from typing import Optional

import mmcv
import numpy as np
from mmengine import fileio
from mmseg.datasets.transforms import LoadAnnotations

from mmfusion.registry import TRANSFORMS

from .cached_load_image_from_file import truncated


@TRANSFORMS.register_module()
class LoadOptionalAnnotations(LoadAnnotations):
    """Load the mask as mmseg's ``LoadAnnotations`` does, or nothing when
    the sample has none (``seg_map_path`` None: a multi-task line with
    ``"mask": null``). The packed sample then has no ``gt_sem_seg`` and the
    segmentation head adds no loss for it. Every argument is mmseg's.

    Unlike mmseg's transform it checks what it reads: a mask file that does
    not decode, is cut short (a PNG without its ``IEND`` chunk) or has more
    than one channel raises ``ValueError`` naming the mask (the dataset adds
    the annotation file and line), where mmseg's fails with an unrelated
    ``AttributeError`` or decodes what is there.
    """

    def transform(self, results: dict) -> Optional[dict]:
        if results.get('seg_map_path') is None:
            return results
        return super().transform(results)

    def _load_seg_map(self, results: dict) -> None:
        """mmseg 1.x's ``_load_seg_map``, with the decode checks."""
        path = results['seg_map_path']
        try:
            data = fileio.get(path, backend_args=self.backend_args)
            why = truncated(data)
            if why:
                raise ValueError(why)
            seg = mmcv.imfrombytes(data, flag='unchanged',
                                   backend=self.imdecode_backend)
            if seg is None:
                raise ValueError('the file does not decode as an image')
        except Exception as exc:
            raise ValueError(f'cannot read mask {path}: {exc}') from exc
        seg = seg.squeeze()
        if seg.ndim > 2:
            raise ValueError(f'mask {path} has {seg.shape[-1]} channels; '
                             'masks must be single-channel PNGs of class '
                             'indices')
        seg = seg.astype(np.uint8)

        if self.reduce_zero_label is None:
            self.reduce_zero_label = results['reduce_zero_label']
        assert self.reduce_zero_label == results['reduce_zero_label'], \
            'Initialize dataset with `reduce_zero_label` as ' \
            f'{results["reduce_zero_label"]} but when load annotation ' \
            f'the `reduce_zero_label` is {self.reduce_zero_label}'
        if self.reduce_zero_label:
            # avoid using underflow conversion
            seg[seg == 0] = 255
            seg = seg - 1
            seg[seg == 254] = 255
        if results.get('label_map', None) is not None:
            original = seg.copy()
            for old_id, new_id in results['label_map'].items():
                seg[original == old_id] = new_id
        results['gt_seg_map'] = seg
        results['seg_fields'].append('gt_seg_map')
