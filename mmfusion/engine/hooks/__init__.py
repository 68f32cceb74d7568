from .bad_sample_report_hook import BadSampleReportHook
from .checkpoint_hook import CheckpointHook
from .dist_consistency_hook import DistConsistencyHook
from .nonfinite_loss_hook import NonFiniteLossError, NonFiniteLossHook
from .plain_checkpoint_hook import PlainCheckpointHook
from .prediction_visualization_hook import PredictionVisualizationHook
from .progress_bar_hook import ProgressBarHook
from .run_info_hook import RunInfoHook
from .tokenizer_hook import TokenizerHook

__all__ = [
    'BadSampleReportHook', 'CheckpointHook', 'NonFiniteLossError',
    'NonFiniteLossHook',
    'DistConsistencyHook','PlainCheckpointHook', 'PredictionVisualizationHook',
           'ProgressBarHook',
           'RunInfoHook', 'TokenizerHook']
