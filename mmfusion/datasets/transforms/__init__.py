"""Data transforms of mmfusion (mmcv's loading transforms work as they are).

The referring-segmentation transforms import mmseg, so their modules are
imported on first use (by the registry, or by ``from
mmfusion.datasets.transforms import ...``).
"""
from mmfusion.registry import lazy_exports

from .cached_compose import CachedCompose
from .cached_load_image_from_file import CachedLoadImageFromFile
from .corruptions import (DropModality, ImageGaussianBlur, ImageGaussianNoise,
                          TextShuffle, TextWordDrop)
from .pack_det_text_inputs import PackDetTextInputs
from .pack_multimodal_inputs import PackMultimodalInputs
from .random_colour_permutation import RandomColourPermutation
from .swap_words_on_flip import SwapWordsOnFlip

__all__ = [
    'CachedCompose', 'CachedLoadImageFromFile', 'DropModality',
    'ImageGaussianBlur', 'ImageGaussianNoise', 'PackDetTextInputs',
    'PackMultimodalInputs', 'RandomColourPermutation', 'SwapWordsOnFlip',
    'TextShuffle', 'TextWordDrop'
]

# Referring segmentation (imported on first access: they import mmseg).
__all__ += ['LoadOptionalAnnotations', 'PackMultimodalSegInputs']

__getattr__ = lazy_exports(
    __name__, ['LoadOptionalAnnotations', 'PackMultimodalSegInputs'])
