"""Evaluation: metrics (importing this registers them)."""
from .metrics import MultimodalClsMetric

__all__ = ['MultimodalClsMetric']
from .metrics import PerClassIoUMetric  # noqa: E402

__all__ += ['PerClassIoUMetric']
