from .base_tokenizer import (BaseTokenizer, adopt_text_encoder_tokenizer,
                             check_state_type)
from .hf_tokenizer import HFTokenizer
from .vocab_tokenizer import NOT_FITTED_MESSAGE, VocabTokenizer

__all__ = ['BaseTokenizer', 'HFTokenizer', 'VocabTokenizer',
           'NOT_FITTED_MESSAGE', 'adopt_text_encoder_tokenizer',
           'check_state_type']
