"""Evaluation metrics of mmfusion."""
from .multimodal_cls_metric import MultimodalClsMetric

__all__ = ['MultimodalClsMetric']
