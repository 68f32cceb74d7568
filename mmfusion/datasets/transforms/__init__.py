"""Data transforms of mmfusion (mmcv's loading transforms work as they are)."""
from .cached_load_image_from_file import CachedLoadImageFromFile
from .corruptions import (DropModality, ImageGaussianBlur, ImageGaussianNoise,
                          TextShuffle, TextWordDrop)
from .pack_det_text_inputs import PackDetTextInputs
from .pack_multimodal_inputs import PackMultimodalInputs

__all__ = [
    'CachedLoadImageFromFile', 'DropModality', 'ImageGaussianBlur',
    'ImageGaussianNoise', 'PackDetTextInputs', 'PackMultimodalInputs',
    'TextShuffle', 'TextWordDrop'
]

# Referring segmentation.
from .load_optional_annotations import LoadOptionalAnnotations  # noqa: E402
from .pack_multimodal_seg_inputs import PackMultimodalSegInputs  # noqa: E402

__all__ += ['LoadOptionalAnnotations', 'PackMultimodalSegInputs']
