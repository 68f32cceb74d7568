"""Model parts: tokenizers, preprocessors, encoders, fusions, heads, models.

Importing this package registers every part in ``mmfusion.registry``.
"""
from .classifiers import MultimodalClassifier
from .data_preprocessors import MultimodalDataPreprocessor
from .fusions import (MAP, VECTOR, BaseFusion, ConcatFusion,
                      CrossAttentionFusion, FiLMFusion, FusionOutput,
                      check_input_kind)
from .heads import ClsHead, MultiLabelClsHead
from .image_encoders import SmallCNN
from .text_encoders import RNNTextEncoder, TransformerTextEncoder
from .tokenizers import VocabTokenizer

__all__ = [
    'VocabTokenizer', 'MultimodalDataPreprocessor', 'SmallCNN',
    'RNNTextEncoder', 'TransformerTextEncoder', 'BaseFusion', 'FusionOutput',
    'VECTOR', 'MAP', 'check_input_kind', 'ConcatFusion', 'FiLMFusion',
    'CrossAttentionFusion', 'ClsHead', 'MultiLabelClsHead',
    'MultimodalClassifier'
]
