"""Data sample for multimodal classification."""
from __future__ import annotations

from mmengine.structures import BaseDataElement


class MultimodalDataSample(BaseDataElement):
    """Annotation and prediction of one (image, text) classification sample.

    Data fields (tensors):
        gt_label: ``(1,)`` class index for single-label tasks, or ``(K,)``
            multi-hot float for multi-label tasks.
        pred_score: ``(K,)`` class probabilities (softmax or sigmoid).
        pred_label: ``(1,)`` predicted index (single-label) or ``(K,)`` 0/1
            (multi-label).

    Meta fields (plain data): ``img_path``, ``text``, ``question_type`` and
    whatever the pipeline's ``meta_keys`` keep.
    """
