"""Segmentors: mmseg's encoder-decoder with text-conditioned features.

The segmentor module imports mmseg, so it is imported on first use (by the
registry, or by ``from mmfusion.models.segmentors import ...``).
"""
from mmfusion.registry import lazy_exports

__all__ = ['TextConditionedSegmentor']

__getattr__ = lazy_exports(__name__, __all__)
