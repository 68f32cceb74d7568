"""Check config values against the type hints of mmfusion's constructors.

``validate_config`` calls :func:`check_value_types` for every module dict
whose class is mmfusion's own (mmdet/mmseg constructors are not typed:
their own errors come through, with the config key path added by
:mod:`mmfusion.config.build_errors`). The check is deliberately lenient:
a hint it cannot read, ``Any``, a class (the value may be its config dict)
or a callable accepts anything but a plain number/string where a module
goes; ints pass for floats; ``None`` passes where the default is ``None``.
"""
from __future__ import annotations

import collections.abc as cabc
import inspect
import typing
from typing import Any, Dict

class ConfigTypeError(TypeError):
    """A config value of the wrong type for an mmfusion constructor."""


def _hints(init) -> Dict[str, Any]:
    try:
        return typing.get_type_hints(init)
    except Exception:
        pass
    hints = {}
    glb = getattr(init, '__globals__', {})
    for name, ann in getattr(init, '__annotations__', {}).items():
        if isinstance(ann, str):
            try:
                ann = eval(ann, glb)  # noqa: S307 - the module's own hints
            except Exception:
                continue
        hints[name] = ann
    return hints


def _describe(hint: Any) -> str:
    text = getattr(hint, '__name__', None) if not typing.get_args(
        hint) else None
    return text or str(hint).replace('typing.', '')


def matches(value: Any, hint: Any) -> bool:
    """Whether a config value (plain data) fits ``hint`` (leniently)."""
    if hint is Any or hint is inspect.Parameter.empty or hint is None:
        return True
    if hint is type(None):
        return value is None
    if isinstance(value, str) and value.startswith('${'):
        return True  # an unresolved interpolation: checked when resolved
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or (origin is not None and
                                  str(origin) == "<class 'types.UnionType'>"):
        return any(matches(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value,
                                                                  bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple, set, frozenset, cabc.Sequence,
                  cabc.MutableSequence, cabc.Iterable, cabc.Collection,
                  cabc.Set):
        if not isinstance(value, (list, tuple, set, frozenset)):
            return False
        if not args:
            return True
        if origin is tuple and not (len(args) == 2 and args[1] is ...):
            return len(args) == len(value) and all(
                matches(v, a) for v, a in zip(value, args))
        return all(matches(v, args[0]) for v in value)
    if origin in (dict, cabc.Mapping, cabc.MutableMapping):
        if not isinstance(value, dict):
            return False
        return len(args) != 2 or all(matches(v, args[1])
                                     for v in value.values())
    if hint in (list, tuple, cabc.Sequence):
        return isinstance(value, (list, tuple))
    if hint in (dict, cabc.Mapping):
        return isinstance(value, dict)
    if origin is not None:
        return True  # another generic (Callable[...], Type[...])
    if inspect.isclass(hint):
        if isinstance(value, hint):
            return True
        # A class-typed argument takes its config dict (or a name);
        # a number where a module or object goes is a mistake.
        return not isinstance(value, (bool, int, float)) or issubclass(
            hint, (int, float))
    return True


def check_value_types(cls: Any, node: Dict[str, Any], path: str,
                      type_name: str) -> None:
    """Raise :class:`ConfigTypeError` for the first value of ``node`` that
    does not fit the type hint of ``cls``'s constructor (mmfusion classes
    and their mmfusion bases only)."""
    if not inspect.isclass(cls):
        return
    seen = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith('mmfusion'):
            continue
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters
        except (TypeError, ValueError):
            continue
        hints = _hints(init)
        for key, value in node.items():
            if key in seen or key not in params or key not in hints:
                continue
            seen.add(key)
            default = params[key].default
            if value is None and (default is None or matches(None,
                                                             hints[key])):
                continue
            if not matches(value, hints[key]):
                raise ConfigTypeError(_message(path, key, type_name,
                                               hints[key], value))


def _message(path: str, key: str, type_name: str, hint: Any,
             value: Any) -> str:
    msg = (f'Config key `{path}.{key}`: `{type_name}` expects '
           f'{_describe(hint)}, got {type(value).__name__} {value!r}.')
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            pass
        else:
            msg += (' YAML reads numbers such as 1e-3 as strings: write '
                    '1.0e-3, or remove the quotes.')
    return msg


__all__ = ['ConfigTypeError', 'check_value_types', 'matches']
