"""Detectors: mmdet's single-stage detector with text-conditioned features.

The detector module imports mmdet, so it is imported on first use (by the
registry, or by ``from mmfusion.models.detectors import ...``).
"""
from mmfusion.registry import lazy_exports

__all__ = ['TextConditionedDetector']

__getattr__ = lazy_exports(__name__, __all__)
