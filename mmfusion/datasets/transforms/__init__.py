"""Data transforms of mmfusion (mmcv's loading transforms work as they are)."""
from .cached_load_image_from_file import CachedLoadImageFromFile
from .pack_multimodal_inputs import PackMultimodalInputs

__all__ = ['CachedLoadImageFromFile', 'PackMultimodalInputs']
