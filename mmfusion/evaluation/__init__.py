"""Evaluation: metrics (importing this registers them; ``PerClassIoUMetric``,
which imports mmseg, registers on first use)."""
from mmfusion.registry import lazy_exports

from .metrics import MultimodalClsMetric

__all__ = ['MultimodalClsMetric']

__all__ += ['PerClassIoUMetric']

__getattr__ = lazy_exports(__name__, ['PerClassIoUMetric'])
