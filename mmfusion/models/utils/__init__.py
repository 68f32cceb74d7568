from .attention import (AttentionBlock, MaskedMultiheadAttention, map_hw,
                        masked_mean, sine_position_encoding_2d)
from .spatial_pooling import SpatialPooling

__all__ = [
    'SpatialPooling', 'MaskedMultiheadAttention', 'AttentionBlock',
    'sine_position_encoding_2d', 'masked_mean', 'map_hw'
]
