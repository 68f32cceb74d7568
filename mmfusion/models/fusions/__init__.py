from .base_fusion import (MAP, VECTOR, BaseFusion, FusionOutput,
                          check_input_kind)
from .co_attention_fusion import CoAttentionFusion
from .concat_fusion import ConcatFusion
from .cross_attention_fusion import CrossAttentionFusion
from .film_fusion import FiLMFusion
from .single_stream_fusion import SingleStreamFusion

__all__ = [
    'BaseFusion', 'FusionOutput', 'VECTOR', 'MAP', 'check_input_kind',
    'ConcatFusion', 'FiLMFusion', 'CrossAttentionFusion',
    'CoAttentionFusion', 'SingleStreamFusion'
]

# Vector-level fusion blocks.
from .bilinear_fusion import BilinearFusion  # noqa: E402
from .gated_fusion import GatedFusion  # noqa: E402
from .late_fusion import LateFusion  # noqa: E402
from .low_rank_fusion import LowRankFusion  # noqa: E402
from .mean_fusion import MeanFusion  # noqa: E402
from .sum_fusion import SumFusion  # noqa: E402
from .tensor_fusion import TensorFusion  # noqa: E402
from .weighted_fusion import WeightedFusion  # noqa: E402

__all__ += [
    'SumFusion', 'MeanFusion', 'WeightedFusion', 'GatedFusion',
    'BilinearFusion', 'TensorFusion', 'LowRankFusion', 'LateFusion'
]
