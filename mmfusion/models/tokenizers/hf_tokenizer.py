"""A pretrained Hugging Face tokenizer behind the mmfusion tokenizer
interface."""
from __future__ import annotations

import json
import os.path as osp
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from mmfusion.models.utils.hf_pretrained import (hub_load_error, hub_offline,
                                                 import_hf,
                                                 resolve_pretrained)
from mmfusion.registry import TASK_UTILS

from .base_tokenizer import BaseTokenizer, check_state_type

NOT_LOADED_MESSAGE = (
    'the HFTokenizer has nothing loaded: set `pretrained` (a model folder, '
    'package:NAME or a hub id) or load a checkpoint whose meta holds '
    '`tokenizer`')


def _special(value: Any) -> Optional[str]:
    """A special token from tokenizer_config.json (a str or a dict)."""
    if isinstance(value, dict):
        value = value.get('content')
    return value if isinstance(value, str) else None


@TASK_UTILS.register_module()
class HFTokenizer(BaseTokenizer):
    """A pretrained subword tokenizer (the ``tokenizers`` library's fast
    tokenizer, as in the model's ``tokenizer.json``).

    It is fitted from the start (:meth:`fit` is a no-op), adds the model's
    special tokens (``[CLS] ... [SEP]`` for BERT-like models), truncates to
    ``max_length`` tokens with the special tokens kept, and pads on the
    right with the model's pad token. Absent (None) and empty texts are all
    padding, as with :class:`VocabTokenizer`.

    :meth:`state_dict` is the tokenizer's JSON string (and the settings):
    plain data, so a checkpoint carries its tokenizer and restores it
    without the package that shipped it.

    Args:
        pretrained: where the tokenizer comes from: a model folder,
            ``package:NAME`` or a hub id (see
            :mod:`mmfusion.models.utils.hf_pretrained`). None leaves the
            tokenizer empty until :meth:`load_state_dict`.
        max_length: most tokens per text, special tokens included (at most
            the model's position embeddings; BERT-like models: 512).
        add_special_tokens: add the model's special tokens (keep True for
            models trained with them).
        tokenizer_json: a tokenizer JSON string instead of ``pretrained``.
    """

    def __init__(self, pretrained: Optional[str] = None,
                 max_length: int = 64, add_special_tokens: bool = True,
                 tokenizer_json: Optional[str] = None) -> None:
        if max_length < 1:
            raise ValueError(f'max_length must be >= 1, got {max_length}')
        self.pretrained = pretrained
        self.max_length = int(max_length)
        self.add_special_tokens = bool(add_special_tokens)
        self._tok = None
        self._pad_id = 0
        self._pad_token: Optional[str] = None
        self._unk_token: Optional[str] = None
        if tokenizer_json is not None:
            self._set_json(tokenizer_json)
        elif pretrained is not None:
            self._load(pretrained)

    # -------------------------------------------------------------- loading
    def _load(self, spec: str) -> None:
        tokenizers = import_hf('tokenizers', 'HFTokenizer')
        source = resolve_pretrained(spec, need_weights=False)
        config: Dict[str, Any] = {}
        if osp.isdir(source):
            for name in ('special_tokens_map.json', 'tokenizer_config.json'):
                path = osp.join(source, name)
                if osp.isfile(path):
                    with open(path, encoding='utf-8') as f:
                        config.update(json.load(f))
        if osp.isfile(osp.join(source, 'tokenizer.json')):
            tok = tokenizers.Tokenizer.from_file(
                osp.join(source, 'tokenizer.json'))
        else:
            # Only the slow tokenizer's files (vocab.txt, ...) or a hub id:
            # transformers converts them to a fast tokenizer.
            transformers = import_hf('transformers', 'HFTokenizer')
            try:
                hf = transformers.AutoTokenizer.from_pretrained(
                    source, use_fast=True, local_files_only=hub_offline())
            except OSError as exc:
                if osp.isdir(source):
                    raise
                raise hub_load_error(spec, exc) from exc
            if not getattr(hf, 'is_fast', False):
                raise ValueError(f'`{spec}` has no fast tokenizer; '
                                 'HFTokenizer needs one (tokenizer.json)')
            tok = hf.backend_tokenizer
            for key in ('pad_token', 'unk_token'):
                config.setdefault(key, getattr(hf, key, None))
        self._pad_token = _special(config.get('pad_token'))
        self._unk_token = _special(config.get('unk_token'))
        self._setup(tok)

    def _set_json(self, text: str) -> None:
        tokenizers = import_hf('tokenizers', 'HFTokenizer')
        self._setup(tokenizers.Tokenizer.from_str(text))

    def _setup(self, tok) -> None:
        """Take ``tok`` over: our padding, our truncation, the pad id."""
        padding = tok.padding
        tok.no_padding()
        tok.no_truncation()
        if self.max_length > 0:
            tok.enable_truncation(max_length=self.max_length)
        pad_id = None
        if self._pad_token is not None:
            pad_id = tok.token_to_id(self._pad_token)
        if pad_id is None and padding:
            pad_id = padding.get('pad_id')
            self._pad_token = padding.get('pad_token', self._pad_token)
        for name in ('[PAD]', '<pad>', '<|endoftext|>'):
            if pad_id is not None:
                break
            pad_id = tok.token_to_id(name)
            if pad_id is not None:
                self._pad_token = name
        self._pad_id = int(pad_id) if pad_id is not None else 0
        if self._unk_token is None:
            for name in ('[UNK]', '<unk>'):
                if tok.token_to_id(name) is not None:
                    self._unk_token = name
                    break
        self._tok = tok

    # ----------------------------------------------------------- interface
    @property
    def is_fitted(self) -> bool:
        return self._tok is not None

    def _check(self):
        if self._tok is None:
            raise RuntimeError(NOT_LOADED_MESSAGE)
        return self._tok

    def fit(self, texts: Iterable[Optional[str]]) -> 'HFTokenizer':
        """A no-op: the vocabulary is the pretrained model's."""
        self._check()
        return self

    def tokenize(self, text: str) -> List[str]:
        """Subword strings of ``text`` (no special tokens; truncated)."""
        return self._check().encode(text, add_special_tokens=False).tokens

    def token_strings(self, text: Optional[str]) -> List[str]:
        if text is None or not text.strip():
            return []
        return self._check().encode(
            text, add_special_tokens=self.add_special_tokens).tokens

    def encode(self, texts: Sequence[Optional[str]]) -> Tuple[Tensor, Tensor]:
        """``(ids, mask)``: right-padded ids ``(B, L)`` long and the mask of
        real tokens ``(B, L)`` bool, ``L`` the longest text (>= 1)."""
        tok = self._check()
        if isinstance(texts, str):
            raise TypeError('encode takes a sequence of texts, not a str')
        texts = list(texts)
        real = [i for i, t in enumerate(texts) if t is not None and t.strip()]
        encodings = tok.encode_batch(
            [texts[i] for i in real],
            add_special_tokens=self.add_special_tokens) if real else []
        rows: List[List[int]] = [[] for _ in texts]
        for i, enc in zip(real, encodings):
            rows[i] = list(enc.ids)
        length = max([1] + [len(r) for r in rows])
        ids = torch.full((len(rows), length), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.bool)
        for i, row in enumerate(rows):
            if row:
                ids[i, :len(row)] = torch.tensor(row, dtype=torch.long)
                mask[i, :len(row)] = True
        return ids, mask

    def decode(self,
               ids: Union[Tensor, Sequence[int], Sequence[Sequence[int]]],
               skip_special: bool = True) -> Union[str, List[str]]:
        tok = self._check()
        if isinstance(ids, Tensor):
            ids = ids.tolist()
        ids = list(ids)
        if ids and isinstance(ids[0], (list, tuple)):
            return [self.decode(row, skip_special) for row in ids]
        ids = [int(i) for i in ids if int(i) != self._pad_id]
        return tok.decode(ids, skip_special_tokens=skip_special)

    @property
    def vocab_size(self) -> int:
        return int(self._check().get_vocab_size(with_added_tokens=True))

    @property
    def max_vocab_size(self) -> int:
        return self.vocab_size

    @property
    def pad_id(self) -> int:
        return self._pad_id

    @property
    def unk_id(self) -> Optional[int]:
        if self._unk_token is None:
            return None
        return self._check().token_to_id(self._unk_token)

    def token_to_id(self, token: str) -> Optional[int]:
        return self._check().token_to_id(token)

    # --------------------------------------------------------------- state
    def state_dict(self) -> Dict[str, Any]:
        """Plain data: the tokenizer JSON string and the settings."""
        return dict(
            type='HFTokenizer',
            tokenizer_json=None if self._tok is None else self._tok.to_str(),
            max_length=self.max_length,
            add_special_tokens=self.add_special_tokens,
            pad_id=self._pad_id, pad_token=self._pad_token,
            unk_token=self._unk_token)

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        check_state_type(state, 'HFTokenizer')
        if 'max_length' in state:
            self.max_length = int(state['max_length'])
        if 'add_special_tokens' in state:
            self.add_special_tokens = bool(state['add_special_tokens'])
        self._pad_token = state.get('pad_token', self._pad_token)
        self._unk_token = state.get('unk_token', self._unk_token)
        text = state.get('tokenizer_json')
        if text is None:
            self._tok = None
            return
        self._set_json(text)
        if state.get('pad_id') is not None:
            self._pad_id = int(state['pad_id'])

    def __repr__(self) -> str:
        size = self.vocab_size if self._tok is not None else 'not loaded'
        return (f'{type(self).__name__}(pretrained={self.pretrained!r}, '
                f'vocab_size={size}, max_length={self.max_length})')
