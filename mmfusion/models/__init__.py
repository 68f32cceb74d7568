"""Model parts: tokenizers, preprocessors, encoders, fusions, heads, models.

Importing this package registers every part in ``mmfusion.registry``, except
the models built on mmdet / mmseg (detector, segmentor, multi-task model):
their modules are imported the first time the registry looks them up, or on
``from mmfusion.models import TextConditionedDetector`` (see
``mmfusion.registry.LAZY_MODULES``).
"""
from mmfusion.registry import lazy_exports

from .classifiers import MultimodalClassifier
from .data_preprocessors import (MultimodalDataPreprocessor,
                                 MultimodalDetDataPreprocessor)
from .fusions import (MAP, VECTOR, BaseFusion, ConcatFusion,
                      CrossAttentionFusion, FiLMFusion, FusionOutput,
                      check_input_kind)
from .heads import ClsHead, MultiLabelClsHead
from .image_encoders import SmallCNN
from .text_encoders import RNNTextEncoder, TransformerTextEncoder
from .tokenizers import VocabTokenizer

__all__ = [
    'VocabTokenizer', 'MultimodalDataPreprocessor',
    'MultimodalDetDataPreprocessor', 'TextConditionedDetector', 'SmallCNN',
    'RNNTextEncoder', 'TransformerTextEncoder', 'BaseFusion', 'FusionOutput',
    'VECTOR', 'MAP', 'check_input_kind', 'ConcatFusion', 'FiLMFusion',
    'CrossAttentionFusion', 'ClsHead', 'MultiLabelClsHead',
    'MultimodalClassifier'
]

# Referring segmentation.
from .data_preprocessors import MultimodalSegDataPreprocessor  # noqa: E402

__all__ += ['MultimodalSegDataPreprocessor', 'TextConditionedSegmentor']

# Several task heads on one trunk.
__all__ += ['MultiTaskModel']

# Imported on first access: their modules import mmdet / mmseg.
__getattr__ = lazy_exports(__name__, [
    'TextConditionedDetector', 'TextConditionedSegmentor', 'MultiTaskModel'])
