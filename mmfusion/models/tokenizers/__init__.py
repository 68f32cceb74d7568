from .vocab_tokenizer import NOT_FITTED_MESSAGE, VocabTokenizer

__all__ = ['VocabTokenizer', 'NOT_FITTED_MESSAGE']
