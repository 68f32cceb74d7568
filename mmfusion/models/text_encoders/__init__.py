from .hf_text_encoder import HFTextEncoder
from .rnn_text_encoder import RNNTextEncoder
from .transformer_text_encoder import TransformerTextEncoder

__all__ = ['HFTextEncoder', 'RNNTextEncoder', 'TransformerTextEncoder']
