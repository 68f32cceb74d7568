from .dist_consistency_hook import DistConsistencyHook
from .plain_checkpoint_hook import PlainCheckpointHook
from .prediction_visualization_hook import PredictionVisualizationHook
from .run_info_hook import RunInfoHook
from .tokenizer_hook import TokenizerHook

__all__ = [
    'DistConsistencyHook','PlainCheckpointHook', 'PredictionVisualizationHook',
           'RunInfoHook', 'TokenizerHook']
