"""Check a composed config before anything is built.

Two checks, each failing with the key path and the nearest valid names:

- every ``type`` resolves in the registry its key implies (``model.*`` in
  MODELS, ``*_dataloader.dataset`` in DATASETS, pipelines in TRANSFORMS, ...),
  in the scope of the nearest ``_scope_`` (default ``mmfusion``);
- every key of a module dict is a parameter of the registered class's
  constructor (or of a base class it forwards ``**kwargs`` to).
"""
from __future__ import annotations

import difflib
import inspect
from typing import Any, Dict, Iterable, List, Optional, Set

from mmengine.registry import DefaultScope, Registry

#: Keys of a module dict that are not constructor arguments.
_META_KEYS = {'type', '_scope_'}
# Keys the optimizer-wrapper builder consumes before the wrapper sees them.
_OPTIM_KEYS = {'paramwise_cfg', 'constructor', 'optimizer'}

# Stop collecting constructor parameters at these bases: their own
# parameters are not config keys a user sets on the module dict.
_STOP_MODULES = ('torch.', 'builtins')


class ConfigKeyError(KeyError):
    """A config key or module name that does not exist; says what does."""

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0]) if self.args else ''


def nearest(name: str, candidates: Iterable[str], n: int = 5) -> List[str]:
    """Close matches of ``name`` (case-insensitive fallback)."""
    candidates = sorted(set(candidates))
    close = difflib.get_close_matches(name, candidates, n=n, cutoff=0.6)
    if not close:
        low = {c.lower(): c for c in candidates}
        close = [low[c] for c in difflib.get_close_matches(
            name.lower(), list(low), n=n, cutoff=0.5)]
    return close


def _registry(scope: str, name: str) -> Optional[Registry]:
    """The registry node ``name`` (e.g. 'MODELS') of package ``scope``."""
    import importlib
    try:
        mod = importlib.import_module(f'{scope}.registry')
    except ImportError:
        return None
    return getattr(mod, name, None)


def resolve_type(type_name: str, scope: str,
                 registries: Iterable[str]) -> Optional[type]:
    """The class ``type_name`` names, searched in ``registries`` of
    ``scope`` (a ``pkg.Name`` prefix switches the scope)."""
    prefix, real = Registry.split_scope_key(type_name)
    if prefix is not None:
        scope = prefix
    for reg_name in registries:
        reg = _registry(scope, reg_name)
        if reg is None:
            continue
        with _scope(scope):
            obj = reg.get(real)
        if obj is not None:
            return obj
    return None


class _scope:
    """Temporarily make ``scope`` the default scope, as the Runner does."""

    def __init__(self, scope: str):
        self.scope = scope
        self.ctx = None

    def __enter__(self):
        # overwrite_default_scope restores the scopes on exit. (A named
        # instance created here would stay the newest one, i.e. the current
        # default scope, after the check: building after validating would
        # then look in mmdet's registries.)
        self.ctx = DefaultScope.overwrite_default_scope(self.scope)
        self.ctx.__enter__()

    def __exit__(self, *exc):
        self.ctx.__exit__(*exc)


def constructor_params(cls: Any) -> Optional[Set[str]]:
    """Parameter names the class's constructor accepts, following
    ``**kwargs`` into base classes; None when anything goes (a function or a
    constructor whose ``**kwargs`` reach no known base)."""
    if not inspect.isclass(cls):
        try:
            sig = inspect.signature(cls)
        except (TypeError, ValueError):
            return None
        if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
            return None
        return set(sig.parameters)
    params: Set[str] = set()
    pending_kwargs = True  # the class itself has not been read yet
    for klass in cls.__mro__:
        if klass.__module__.startswith(_STOP_MODULES) or klass is object:
            break
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        try:
            sig = inspect.signature(init)
        except (TypeError, ValueError):
            return None
        pending_kwargs = False
        for p in sig.parameters.values():
            if p.name == 'self' or p.kind is p.VAR_POSITIONAL:
                continue
            if p.kind is p.VAR_KEYWORD:
                pending_kwargs = True
                continue
            params.add(p.name)
        if not pending_kwargs:
            return params
    # ``**kwargs`` that reach no known base go somewhere we cannot see.
    return None if pending_kwargs else params


# Which registries a dict with a ``type`` is searched in, by the name of the
# key that holds it. Dicts under other keys inherit the parent's context.
_CONTEXT = {
    'model': ['MODELS'],
    'data_preprocessor': ['MODELS'],
    'tokenizer': ['TASK_UTILS'],
    'dataset': ['DATASETS'],
    'pipeline': ['TRANSFORMS'],
    'train_pipeline': ['TRANSFORMS'],
    'test_pipeline': ['TRANSFORMS'],
    'sampler': ['DATA_SAMPLERS'],
    'batch_sampler': ['DATA_SAMPLERS'],
    'collate_fn': ['FUNCTIONS'],
    'val_evaluator': ['METRICS', 'EVALUATOR'],
    'test_evaluator': ['METRICS', 'EVALUATOR'],
    'metrics': ['METRICS'],
    'default_hooks': ['HOOKS'],
    'custom_hooks': ['HOOKS'],
    'optim_wrapper': ['OPTIM_WRAPPERS'],
    'optimizer': ['OPTIMIZERS'],
    'constructor': ['OPTIM_WRAPPER_CONSTRUCTORS'],
    'param_scheduler': ['PARAM_SCHEDULERS'],
    'visualizer': ['VISUALIZERS'],
    'vis_backends': ['VISBACKENDS'],
    'log_processor': ['LOG_PROCESSORS'],
    'train_cfg': ['LOOPS'],
    'val_cfg': ['LOOPS'],
    'test_cfg': ['LOOPS'],
    'model_wrapper_cfg': ['MODEL_WRAPPERS'],
}
# Inside a model, mmdet/mmseg build helpers from these registries too.
_MODEL_FALLBACK = ['MODELS', 'TASK_UTILS']
_ALL = ['MODELS', 'TASK_UTILS', 'DATASETS', 'TRANSFORMS', 'METRICS', 'HOOKS',
        'LOOPS', 'OPTIMIZERS', 'PARAM_SCHEDULERS', 'VISUALIZERS',
        'VISBACKENDS', 'FUNCTIONS', 'DATA_SAMPLERS']
# Loop dicts (train_cfg) without a registered ``type`` use mmengine's
# shorthand (by_epoch=..., max_iters=...): not module dicts.
_SKIP_KEY_CHECK_CONTEXTS = {'train_cfg', 'val_cfg', 'test_cfg'}
# Dicts whose ``type`` names no registered module: mmcv's ``batched_nms``
# reads a detection head's ``nms=dict(type='nms', iou_threshold=...)`` as the
# name of an op in ``mmcv.ops``.
_NOT_MODULE_KEYS = {'nms'}


def validate_config(cfg: Dict[str, Any], default_scope: str = 'mmfusion'
                    ) -> None:
    """Raise :class:`ConfigKeyError` for the first unknown type or key."""
    scope = cfg.get('default_scope') or default_scope
    for key, value in cfg.items():
        _walk(value, key, _CONTEXT.get(key), scope, key)


def _walk(node: Any, path: str, registries: Optional[List[str]], scope: str,
          context_key: str) -> None:
    if isinstance(node, (list, tuple)):
        for i, item in enumerate(node):
            _walk(item, f'{path}[{i}]', registries, scope, context_key)
        return
    if not isinstance(node, dict) or context_key in _NOT_MODULE_KEYS:
        return
    scope = node.get('_scope_', scope)
    type_name = node.get('type')
    if isinstance(type_name, str) and registries is not None:
        cls = resolve_type(type_name, scope, registries)
        if cls is None and registries == _CONTEXT['model']:
            cls = resolve_type(type_name, scope, _MODEL_FALLBACK)
        if cls is None:
            cls = resolve_type(type_name, scope, _ALL)
        if cls is None:
            names: Set[str] = set()
            for reg_name in registries:
                reg = _registry(scope, reg_name)
                if reg is not None:
                    from mmfusion.registry import registered_names
                    names.update(registered_names(reg))
            close = nearest(Registry.split_scope_key(type_name)[1], names)
            hint = (f' Nearest registered names: {", ".join(close)}.'
                    if close else '')
            raise ConfigKeyError(
                f'Config key `{path}.type`: `{type_name}` is not registered '
                f'in scope `{scope}` ({"/".join(registries)}).{hint} '
                'mmdet/mmseg modules need `_scope_: mmdet` (or mmseg) on '
                'the dict; `python tools/list_modules.py` lists every name.')
        if context_key not in _SKIP_KEY_CHECK_CONTEXTS:
            params = constructor_params(cls)
            if params is not None:
                for key in node:
                    if key in _META_KEYS or key in params or (
                            context_key == 'optim_wrapper'
                            and key in _OPTIM_KEYS):
                        continue
                    close = nearest(key, params)
                    hint = (f' Nearest valid names: {", ".join(close)}.'
                            if close else
                            f' Valid names: {", ".join(sorted(params))}.')
                    raise ConfigKeyError(
                        f'Config key `{path}.{key}`: `{type_name}` takes no '
                        f'parameter `{key}`.{hint}')
            # mmfusion's constructors are typed: a wrong value type fails
            # here, before anything is built.
            from .type_check import check_value_types
            check_value_types(cls, node, path, type_name)
    for key, value in node.items():
        if key in _META_KEYS:
            continue
        sub = _CONTEXT.get(key)
        if sub is None:
            sub = (_MODEL_FALLBACK if registries in (_CONTEXT['model'],
                                                    _MODEL_FALLBACK)
                   else registries)
        _walk(value, f'{path}.{key}', sub, scope, key)
