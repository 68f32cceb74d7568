from .rnn_text_encoder import RNNTextEncoder
from .transformer_text_encoder import TransformerTextEncoder

__all__ = ['RNNTextEncoder', 'TransformerTextEncoder']
