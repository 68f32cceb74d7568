"""Datasets, the shapes benchmark and data transforms."""
from mmfusion.registry import lazy_exports

from .grounding_dataset import GroundingDataset
from .multimodal_cls_dataset import MultimodalClsDataset
from .samplers import GroupSampler
from .shapes import (ShapesGenerator, ShapesGroundingGenerator,
                     ensure_shapes_dataset)
from .shapes_cls_dataset import ShapesClsDataset
from .shapes_grounding_dataset import ShapesGroundingDataset
from .transforms import PackDetTextInputs, PackMultimodalInputs

__all__ = [
    'GroundingDataset', 'GroupSampler', 'MultimodalClsDataset',
    'PackDetTextInputs', 'PackMultimodalInputs', 'ShapesClsDataset',
    'ShapesGenerator', 'ShapesGroundingDataset', 'ShapesGroundingGenerator',
    'ensure_shapes_dataset'
]

# Referring segmentation.
from .refseg_dataset import RefSegDataset  # noqa: E402
from .shapes_refseg_dataset import ShapesRefSegDataset  # noqa: E402

__all__ += ['LoadOptionalAnnotations', 'PackMultimodalSegInputs',
            'RefSegDataset', 'ShapesRefSegDataset']

# Imported on first access: their modules import mmseg.
__getattr__ = lazy_exports(
    __name__, ['LoadOptionalAnnotations', 'PackMultimodalSegInputs'])
