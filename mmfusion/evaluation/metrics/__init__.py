"""Evaluation metrics of mmfusion."""
from .multimodal_cls_metric import MultimodalClsMetric

__all__ = ['MultimodalClsMetric']
from .per_class_iou_metric import PerClassIoUMetric  # noqa: E402

__all__ += ['PerClassIoUMetric']
