"""Evaluation metrics of mmfusion.

``PerClassIoUMetric`` subclasses mmseg's ``IoUMetric`` and
``CocoDetMetric`` mmdet's ``CocoMetric``, so their modules are imported on
first use (by the registry, or by ``from mmfusion.evaluation.metrics import
PerClassIoUMetric``).
"""
from mmfusion.registry import lazy_exports

from .multimodal_cls_metric import MultimodalClsMetric

__all__ = ['MultimodalClsMetric']

__all__ += ['CocoDetMetric', 'PerClassIoUMetric']

__getattr__ = lazy_exports(__name__, ['CocoDetMetric', 'PerClassIoUMetric'])
