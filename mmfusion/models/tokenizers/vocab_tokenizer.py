"""A word-level tokenizer whose vocabulary is fitted on the training texts."""
from __future__ import annotations

import re
from collections import Counter
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from mmfusion.registry import TASK_UTILS

from .base_tokenizer import BaseTokenizer, check_state_type

PAD_TOKEN = '<pad>'
UNK_TOKEN = '<unk>'
PAD_ID = 0
UNK_ID = 1
SPECIAL_TOKENS = (PAD_TOKEN, UNK_TOKEN)

#: The error raised when a tokenizer without vocabulary is used.
NOT_FITTED_MESSAGE = (
    'the tokenizer has no vocabulary: fit it on the training texts (the '
    'TokenizerHook does this in training) or load a checkpoint whose meta '
    'holds `tokenizer`')

_WORD_RE = re.compile(r'\w+|[^\w\s]')
#: Distinct texts whose ids are kept (the cache is emptied when full).
_IDS_CACHE_SIZE = 65536


@TASK_UTILS.register_module()
class VocabTokenizer(BaseTokenizer):
    """Word-level tokenizer: words and punctuation marks are the tokens.

    ``"Is the cube red?"`` becomes ``['is', 'the', 'cube', 'red', '?']``.
    Id 0 is ``<pad>`` and id 1 is ``<unk>`` (words outside the vocabulary).
    The vocabulary is built by :meth:`fit` (or given as ``vocab``) and is
    part of :meth:`state_dict`, which holds plain data only so it can live
    in a checkpoint's meta.

    Args:
        max_length: most tokens kept per text; longer texts are truncated.
        max_vocab_size: most entries in the vocabulary, the two special
            tokens included.
        lowercase: lowercase texts before splitting.
        min_freq: words seen fewer times by :meth:`fit` are left out.
        vocab: a ready vocabulary (index = id). The special tokens are put
            first when it does not start with them.
        split_suffixes: suffixes (e.g. ``['s']``) split off a word when
            :meth:`fit` has also seen the word without it: with ``['s']``,
            ``circles`` becomes ``circle ##s`` if ``circle`` is a training
            word, so the plural shares the singular's embedding (as a
            WordPiece vocabulary would) instead of being learnt alone from
            the texts that use it. ``is`` stays whole (no word ``i``).
        splits: word -> its pieces, as :meth:`fit` found them (given with
            ``vocab`` to restore a fitted tokenizer).
    """

    def __init__(self, max_length: int = 32, max_vocab_size: int = 1000,
                 lowercase: bool = True, min_freq: int = 1,
                 vocab: Optional[List[str]] = None,
                 split_suffixes: Sequence[str] = (),
                 splits: Optional[Dict[str, List[str]]] = None) -> None:
        if max_length < 1:
            raise ValueError(f'max_length must be >= 1, got {max_length}')
        if max_vocab_size < len(SPECIAL_TOKENS):
            raise ValueError('max_vocab_size must leave room for the special '
                             f'tokens {SPECIAL_TOKENS}, got {max_vocab_size}')
        self.max_length = int(max_length)
        self.max_vocab_size = int(max_vocab_size)
        self.lowercase = bool(lowercase)
        self.min_freq = int(min_freq)
        if isinstance(split_suffixes, str):
            split_suffixes = (split_suffixes, )
        bad = [x for x in split_suffixes if not re.fullmatch(r'\w+', str(x))]
        if bad:
            raise ValueError(f'split_suffixes must be word characters, got '
                             f'{bad}')
        self.split_suffixes = tuple(str(x) for x in split_suffixes)
        self._splits: Dict[str, List[str]] = {
            str(k): list(v) for k, v in (splits or {}).items()}
        self._vocab: Optional[List[str]] = None
        self._index: Dict[str, int] = {}
        # (text, lowercase) -> ids before truncation: benchmark texts repeat
        # a lot, and splitting with a regex is most of encode's time.
        self._ids_cache: Dict[Tuple[str, bool], List[int]] = {}
        if vocab is not None:
            self._set_vocab(list(vocab))

    # ------------------------------------------------------------ vocabulary
    def _set_vocab(self, vocab: List[str]) -> None:
        if vocab[:len(SPECIAL_TOKENS)] != list(SPECIAL_TOKENS):
            vocab = list(SPECIAL_TOKENS) + [
                w for w in vocab if w not in SPECIAL_TOKENS]
        if len(set(vocab)) != len(vocab):
            raise ValueError('the vocabulary has duplicate entries')
        if len(vocab) > self.max_vocab_size:
            raise ValueError(
                f'the vocabulary has {len(vocab)} entries, more than '
                f'max_vocab_size={self.max_vocab_size}')
        self._vocab = vocab
        self._index = {w: i for i, w in enumerate(vocab)}
        self._ids_cache = {}

    def tokenize(self, text: str) -> List[str]:
        """Split ``text`` into words and punctuation marks (not truncated),
        and the words :meth:`fit` chose to split into their pieces."""
        words = self._words(text)
        if not self._splits:
            return words
        out: List[str] = []
        for w in words:
            out.extend(self._splits.get(w, (w, )))
        return out

    def _words(self, text: str) -> List[str]:
        if self.lowercase:
            text = text.lower()
        return _WORD_RE.findall(text)

    def _find_splits(self, words: Counter) -> Dict[str, List[str]]:
        """Words ``stem + suffix`` whose ``stem`` is a word too."""
        splits = {}
        for w in sorted(words):
            for suffix in self.split_suffixes:
                stem = w[:-len(suffix)]
                if w.endswith(suffix) and len(stem) > 1 and stem in words:
                    splits[w] = [stem, '##' + suffix]
                    break
        return splits

    def fit(self, texts: Iterable[Optional[str]]) -> 'VocabTokenizer':
        """Build the vocabulary from ``texts`` (None entries are skipped).

        Words are ranked by decreasing frequency, ties by the word itself, so
        the same texts always give the same ids. Returns ``self``.
        """
        words: Counter = Counter()
        for text in texts:
            if text is not None:
                words.update(self._words(text))
        self._splits = self._find_splits(words)
        counts: Counter = Counter()
        for w, c in words.items():
            for piece in self._splits.get(w, (w, )):
                counts[piece] += c
        for special in SPECIAL_TOKENS:
            counts.pop(special, None)
        words = sorted((w for w, c in counts.items() if c >= self.min_freq),
                       key=lambda w: (-counts[w], w))
        room = self.max_vocab_size - len(SPECIAL_TOKENS)
        self._set_vocab(list(SPECIAL_TOKENS) + words[:room])
        return self

    @property
    def is_fitted(self) -> bool:
        """Whether the tokenizer has a vocabulary."""
        return self._vocab is not None

    def _check_fitted(self) -> List[str]:
        if self._vocab is None:
            raise RuntimeError(NOT_FITTED_MESSAGE)
        return self._vocab

    @property
    def vocab(self) -> List[str]:
        """The vocabulary, index = id (a copy)."""
        return list(self._check_fitted())

    @property
    def vocab_size(self) -> int:
        """Entries in the vocabulary, the special tokens included."""
        return len(self._check_fitted())

    @property
    def pad_id(self) -> int:
        return PAD_ID

    @property
    def unk_id(self) -> int:
        return UNK_ID

    def token_to_id(self, token: str) -> int:
        """The id of ``token`` (``<unk>``'s when it is not in the vocab)."""
        self._check_fitted()
        return self._index.get(token, UNK_ID)

    # --------------------------------------------------------------- coding
    def encode(self, texts: Sequence[Optional[str]]) -> Tuple[Tensor, Tensor]:
        """Token ids and validity mask of a batch of texts.

        Args:
            texts: ``B`` texts; None stands for an absent text.

        Returns:
            ``ids`` ``(B, L)`` long and ``mask`` ``(B, L)`` bool (True at
            real tokens). ``L`` is the longest text of the batch after
            truncation to ``max_length``, at least 1; shorter texts are padded
            on the right with ``<pad>``. Absent or empty texts are all
            padding.
        """
        self._check_fitted()
        if isinstance(texts, str):
            raise TypeError('encode takes a sequence of texts, not a str')
        rows = [[] if text is None else self._ids(text)[:self.max_length]
                for text in texts]
        lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)
        length = max(1, int(lengths.max()) if len(rows) else 1)
        # One tensor from padded lists: no per-text tensor or slice writes.
        ids = torch.tensor([r + [PAD_ID] * (length - len(r)) for r in rows],
                           dtype=torch.long).reshape(len(rows), length)
        mask = torch.arange(length)[None, :] < lengths[:, None]
        return ids, mask

    def _ids(self, text: str) -> List[int]:
        """Ids of every token of ``text`` (not truncated), cached."""
        key = (text, self.lowercase)
        ids = self._ids_cache.get(key)
        if ids is None:
            if len(self._ids_cache) >= _IDS_CACHE_SIZE:
                self._ids_cache.clear()
            ids = [self._index.get(t, UNK_ID) for t in self.tokenize(text)]
            self._ids_cache[key] = ids
        return ids

    def __call__(self,
                 texts: Sequence[Optional[str]]) -> Tuple[Tensor, Tensor]:
        return self.encode(texts)

    def decode(self,
               ids: Union[Tensor, Sequence[int], Sequence[Sequence[int]]],
               skip_special: bool = True) -> Union[str, List[str]]:
        """Text of one id sequence (a ``str``) or of a batch (a list).

        Tokens are joined by spaces; ``<pad>`` is dropped, and ``<unk>`` too
        when ``skip_special``.
        """
        vocab = self._check_fitted()
        if isinstance(ids, Tensor):
            ids = ids.tolist()
        ids = list(ids)
        if ids and isinstance(ids[0], (list, tuple)):
            return [self.decode(row, skip_special) for row in ids]
        words = []
        for i in ids:
            i = int(i)
            if i == PAD_ID or (skip_special and i == UNK_ID):
                continue
            words.append(vocab[i] if 0 <= i < len(vocab) else UNK_TOKEN)
        return ' '.join(words)

    # ---------------------------------------------------------------- state
    def state_dict(self) -> Dict[str, Any]:
        """Settings and vocabulary as plain data (JSON-serialisable)."""
        return dict(
            type='VocabTokenizer',
            vocab=None if self._vocab is None else list(self._vocab),
            max_length=self.max_length,
            max_vocab_size=self.max_vocab_size,
            lowercase=self.lowercase,
            min_freq=self.min_freq,
            split_suffixes=list(self.split_suffixes),
            splits={k: list(v) for k, v in self._splits.items()})

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        check_state_type(state, 'VocabTokenizer')
        for key in ('max_length', 'max_vocab_size', 'lowercase', 'min_freq'):
            if key in state:
                setattr(self, key, type(getattr(self, key))(state[key]))
        # Checkpoints from before split_suffixes have neither key.
        self.split_suffixes = tuple(state.get('split_suffixes', ()))
        self._splits = {str(k): list(v)
                        for k, v in (state.get('splits') or {}).items()}
        vocab = state.get('vocab')
        if vocab is None:
            self._vocab, self._index, self._ids_cache = None, {}, {}
        else:
            self._set_vocab(list(vocab))

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        size = len(self._vocab) if self._vocab is not None else 'unfitted'
        return (f'{type(self).__name__}(vocab_size={size}, '
                f'max_length={self.max_length}, '
                f'max_vocab_size={self.max_vocab_size}, '
                f'lowercase={self.lowercase}, min_freq={self.min_freq}, '
                f'split_suffixes={list(self.split_suffixes)})')
