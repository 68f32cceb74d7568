from .attention import (AttentionBlock, MaskedMultiheadAttention, map_hw,
                        masked_mean, sine_position_encoding_2d)
from .object_counts import ObjectCounts, connected_components
from .spatial_pooling import SpatialPooling

__all__ = [
    'SpatialPooling', 'ObjectCounts', 'connected_components', 'MaskedMultiheadAttention', 'AttentionBlock',
    'sine_position_encoding_2d', 'masked_mean', 'map_hw'
]
