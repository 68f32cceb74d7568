"""The one tokenizer interface that data preprocessors and hooks rely on."""
from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from torch import Tensor


class BaseTokenizer(metaclass=ABCMeta):
    """What every tokenizer offers (the word-level
    :class:`~mmfusion.models.tokenizers.VocabTokenizer` and the pretrained
    :class:`~mmfusion.models.tokenizers.HFTokenizer`).

    - :meth:`fit` builds a vocabulary from the training texts; the
      ``TokenizerHook`` calls it before training unless :attr:`is_fitted`
      (a pretrained tokenizer is fitted from the start: ``fit`` is a no-op).
    - :meth:`encode` turns ``B`` texts (None = absent) into right-padded
      ``ids`` ``(B, L)`` long and ``mask`` ``(B, L)`` bool (True at real
      tokens); absent and empty texts are all padding, ``L >= 1``.
    - :meth:`state_dict` is plain data (JSON-serialisable: the vocabulary,
      or the tokenizer's JSON string), never a pickled object, so it can
      live in a checkpoint's ``meta['tokenizer']``; it names the class in
      ``type`` and :meth:`load_state_dict` refuses another class's state.

    Attributes:
        max_length: most tokens per text after truncation (special tokens
            included).
        max_vocab_size: upper bound of the ids, i.e. the embedding table a
            text encoder needs (an attribute or a property).
    """

    max_length: int
    max_vocab_size: int

    @property
    @abstractmethod
    def is_fitted(self) -> bool:
        """Whether the tokenizer can encode (has a vocabulary)."""

    @abstractmethod
    def fit(self, texts: Iterable[Optional[str]]) -> 'BaseTokenizer':
        """Build the vocabulary from ``texts``; returns ``self``."""

    @abstractmethod
    def tokenize(self, text: str) -> List[str]:
        """The token strings of ``text`` (no special tokens, no padding)."""

    @abstractmethod
    def encode(self, texts: Sequence[Optional[str]]) -> Tuple[Tensor, Tensor]:
        """``(ids, mask)`` of a batch of texts; see the class docstring."""

    def __call__(self,
                 texts: Sequence[Optional[str]]) -> Tuple[Tensor, Tensor]:
        return self.encode(texts)

    def token_strings(self, text: Optional[str]) -> List[str]:
        """The string of every real position :meth:`encode` gives ``text``
        (special tokens included), e.g. to label attention rows."""
        return [] if text is None else self.tokenize(text)[:self.max_length]

    @abstractmethod
    def decode(self,
               ids: Union[Tensor, Sequence[int], Sequence[Sequence[int]]],
               skip_special: bool = True) -> Union[str, List[str]]:
        """Text of one id sequence (a ``str``) or of a batch (a list)."""

    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """Entries in the vocabulary."""

    @property
    @abstractmethod
    def pad_id(self) -> int:
        """The id that padded positions hold."""

    @abstractmethod
    def state_dict(self) -> Dict[str, Any]:
        """Settings and vocabulary as plain data, with ``type``."""

    @abstractmethod
    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def __len__(self) -> int:
        return self.vocab_size


def check_state_type(state: Dict[str, Any], expected: str) -> None:
    """Refuse a tokenizer state saved by another tokenizer class.

    States without ``type`` are accepted when they hold the expected class's
    keys (checkpoints saved before ``type`` existed hold a ``vocab``)."""
    kind = state.get('type')
    if kind is None:
        kind = 'HFTokenizer' if 'tokenizer_json' in state else (
            'VocabTokenizer' if 'vocab' in state else expected)
    if kind != expected:
        raise ValueError(
            f'the checkpoint holds a {kind} state but the model uses a '
            f'{expected}: the checkpoint was trained with another text '
            'encoder / tokenizer. Use the config it was trained with (its '
            'work dir\'s config.yaml).')


def adopt_text_encoder_tokenizer(data_preprocessor: Any,
                                 text_encoder: Any) -> None:
    """Give ``data_preprocessor`` the tokenizer ``text_encoder`` brings.

    A pretrained text encoder (one with ``build_tokenizer()``, e.g.
    :class:`~mmfusion.models.text_encoders.HFTextEncoder`) only understands
    the ids of its own tokenizer. Models call this right after building the
    text encoder: the preprocessor's tokenizer is replaced by the encoder's
    unless the encoder accepts it as it is (``accepts_tokenizer``), so
    ``model/text_encoder=minilm`` works as a plain group override.
    """
    build = getattr(text_encoder, 'build_tokenizer', None)
    if build is None or not hasattr(data_preprocessor, 'tokenizer'):
        return
    current = getattr(data_preprocessor, 'tokenizer', None)
    accepts = getattr(text_encoder, 'accepts_tokenizer', None)
    if current is not None and accepts is not None and accepts(current):
        return
    data_preprocessor.tokenizer = build()
    from mmengine.logging import print_log
    print_log(
        f'{type(text_encoder).__name__} brings its own tokenizer: the data '
        f'preprocessor uses {data_preprocessor.tokenizer!r} instead of '
        f'{type(current).__name__ if current is not None else None}.',
        logger='current')
