"""Data transforms of mmfusion (mmcv's loading transforms are used as is)."""
from .pack_multimodal_inputs import PackMultimodalInputs

__all__ = ['PackMultimodalInputs']
