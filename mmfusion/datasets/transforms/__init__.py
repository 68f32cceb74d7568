"""Data transforms of mmfusion (mmcv's loading transforms work as they are)."""
from .cached_load_image_from_file import CachedLoadImageFromFile
from .corruptions import (DropModality, ImageGaussianBlur, ImageGaussianNoise,
                          TextShuffle, TextWordDrop)
from .pack_multimodal_inputs import PackMultimodalInputs

__all__ = [
    'CachedLoadImageFromFile', 'DropModality', 'ImageGaussianBlur',
    'ImageGaussianNoise', 'PackMultimodalInputs', 'TextShuffle', 'TextWordDrop'
]
