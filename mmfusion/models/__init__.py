"""Model parts: tokenizers, preprocessors, encoders, fusions, heads, models.

Importing this package registers every part in ``mmfusion.registry``.
"""
from .classifiers import MultimodalClassifier
from .data_preprocessors import (MultimodalDataPreprocessor,
                                 MultimodalDetDataPreprocessor)
from .detectors import TextConditionedDetector
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
from .segmentors import TextConditionedSegmentor  # noqa: E402

__all__ += ['MultimodalSegDataPreprocessor', 'TextConditionedSegmentor']

# Several task heads on one trunk.
from .multi_task import MultiTaskModel  # noqa: E402

__all__ += ['MultiTaskModel']
