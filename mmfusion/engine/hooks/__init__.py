from .plain_checkpoint_hook import PlainCheckpointHook
from .run_info_hook import RunInfoHook
from .tokenizer_hook import TokenizerHook

__all__ = ['PlainCheckpointHook', 'RunInfoHook', 'TokenizerHook']
