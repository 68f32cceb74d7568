"""Evaluation: metrics (importing this registers them)."""
from .metrics import MultimodalClsMetric

__all__ = ['MultimodalClsMetric']
