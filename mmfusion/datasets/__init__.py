"""Datasets, the shapes benchmark and data transforms."""
from .multimodal_cls_dataset import MultimodalClsDataset
from .samplers import GroupSampler
from .shapes import ShapesGenerator, ensure_shapes_dataset
from .shapes_cls_dataset import ShapesClsDataset
from .transforms import PackMultimodalInputs

__all__ = [
    'GroupSampler', 'MultimodalClsDataset', 'PackMultimodalInputs', 'ShapesClsDataset',
    'ShapesGenerator', 'ensure_shapes_dataset'
]
