from .base_fusion import (MAP, VECTOR, BaseFusion, FusionOutput,
                          check_input_kind)
from .concat_fusion import ConcatFusion
from .cross_attention_fusion import CrossAttentionFusion
from .film_fusion import FiLMFusion

__all__ = [
    'BaseFusion', 'FusionOutput', 'VECTOR', 'MAP', 'check_input_kind',
    'ConcatFusion', 'FiLMFusion', 'CrossAttentionFusion'
]
