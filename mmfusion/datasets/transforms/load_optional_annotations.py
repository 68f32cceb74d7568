"""mmseg's LoadAnnotations for samples that may have no mask."""
from __future__ import annotations

from typing import Optional

from mmseg.datasets.transforms import LoadAnnotations

from mmfusion.registry import TRANSFORMS


@TRANSFORMS.register_module()
class LoadOptionalAnnotations(LoadAnnotations):
    """Load the mask as mmseg's ``LoadAnnotations`` does, or nothing when
    the sample has none (``seg_map_path`` None: a multi-task line with
    ``"mask": null``). The packed sample then has no ``gt_sem_seg`` and the
    segmentation head adds no loss for it. Every argument is mmseg's.
    """

    def transform(self, results: dict) -> Optional[dict]:
        if results.get('seg_map_path') is None:
            return results
        return super().transform(results)
