"""Add the config key path to errors raised by module constructors.

mmengine 0.10.7's ``build_from_cfg`` lets a constructor's exception through
as it is, so an error deep inside a model (an mmdet loss, say) does not say
which config dict it came from. :func:`annotate_build_errors` reads the
``build_from_cfg`` frames of the traceback (which class each was building,
from which dict), finds that dict in the config and appends
``[config key `model.head.loss_cls`]`` to the message; the exception type
and the constructor's own message stay as they were. This matters for
mmdet/mmseg modules, whose constructors are not typed and so are not
checked before building (mmfusion's own are, see
:mod:`mmfusion.config.type_check`).
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, List, Optional, Tuple


def build_chain(tb) -> List[Tuple[str, Optional[dict]]]:
    """(class name, config dict) of every ``build_from_cfg`` call on the
    traceback, outermost first."""
    chain = []
    while tb is not None:
        frame = tb.tb_frame
        code = frame.f_code
        if code.co_name == 'build_from_cfg' and code.co_filename.replace(
                '\\', '/').endswith('mmengine/registry/build_functions.py'):
            loc = frame.f_locals
            built = _plain(loc.get('cfg'))
            # The type as the config spells it (registry names may differ
            # from class names), else the class being built.
            name = _short(built.get('type')) if built and built.get(
                'type') else getattr(loc.get('obj_cls'), '__name__', '?')
            chain.append((name, built))
        tb = tb.tb_next
    return chain


def _short(type_name: Any) -> str:
    if not isinstance(type_name, str):
        return getattr(type_name, '__name__', str(type_name))
    return type_name.split('.')[-1]


def _walk(node: Any, path: str, types: Tuple[str, ...]
          ) -> Iterator[Tuple[str, Tuple[str, ...]]]:
    if isinstance(node, (list, tuple)):
        for i, item in enumerate(node):
            yield from _walk(item, f'{path}[{i}]', types)
        return
    if not isinstance(node, dict):
        return
    if 'type' in node:
        types = types + (_short(node['type']),)
        yield path, types
    for key, value in node.items():
        if key != 'type':
            yield from _walk(value, f'{path}.{key}' if path else key, types)


def _is_subsequence(short: List[str], long: Tuple[str, ...]) -> bool:
    it = iter(long)
    return all(any(x == y for y in it) for x in short)


def _node(cfg: dict, path: str) -> Any:
    import re
    node: Any = cfg
    for key, index in re.findall(r'([^.\[\]]+)|\[(\d+)\]', path):
        node = node[int(index)] if index else node[key]
    return node


def _same(node: Any, built: Optional[dict]) -> bool:
    if built is None or not isinstance(node, dict):
        return False
    keys = set(node) - {'type', '_scope_'}
    return all(k in built and built[k] == node[k] for k in keys)


def config_paths_for(cfg: Any, chain: List[Tuple[str, Optional[dict]]]
                     ) -> List[str]:
    """Config key paths of the dict whose build failed: of type
    ``chain[-1]``, nested (in order) in dicts of the types before it; when
    several match, those whose values equal the failing dict's."""
    if not chain:
        return []
    names = [name for name, _ in chain]
    plain = _plain(cfg) or {}
    nodes = list(_walk(plain, '', ()))
    found = [path for path, types in nodes
             if types[-1] == names[-1] and _is_subsequence(names[:-1],
                                                           types[:-1])]
    if not found:
        # Builders outside the config tree (a loop building its dataloader's
        # dataset) break the chain: match the failing dict alone.
        found = [path for path, types in nodes if types[-1] == names[-1]]
    if len(found) > 1:
        same = [p for p in found if _same(_node(plain, p), chain[-1][1])]
        found = same or found
    return found[:4]


@contextlib.contextmanager
def annotate_build_errors(cfg: Any) -> Iterator[None]:
    """Re-raise errors from building ``cfg``'s modules with the config key
    path of the failing dict added (type and message otherwise unchanged).
    """
    try:
        yield
    except Exception as exc:
        chain = build_chain(exc.__traceback__)
        paths = config_paths_for(cfg, chain) if chain else []
        if not paths:
            raise
        where = ' or '.join(f'`{p}`' for p in paths)
        message = str(exc.args[0]) if len(exc.args) == 1 else str(exc)
        note = f'[config key {where}]'
        try:
            new = type(exc)(f'{message} {note}' if message else note)
        except Exception:
            exc.add_note('config key: ' + ' or '.join(paths))
            raise exc
        raise new.with_traceback(exc.__traceback__) from exc


def _plain(cfg: Any) -> Optional[dict]:
    if cfg is None:
        return None
    to_dict = getattr(cfg, 'to_dict', None)
    if callable(to_dict):
        return to_dict()
    try:
        return dict(cfg)
    except (TypeError, ValueError):
        return None
