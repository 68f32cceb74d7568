"""Every registered module, by registry, with the config options using it.

::

    python tools/list_modules.py                  # mmfusion's own modules
    python tools/list_modules.py --registry model
    python tools/list_modules.py --all            # + mmengine's (parents)
    python tools/list_modules.py --json

"Used by" lists the files under ``configs/`` whose dicts build the module:
a group option as ``group=option`` (``model/fusion=film``), an experiment
or base file by its path. The last section lists the modules the configs
take from other packages (mmengine, mmdet with ``_scope_: mmdet``, ...).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple


def parse_args(argv: Sequence[str]):
    parser = argparse.ArgumentParser(
        description='List every registered module by registry, with the '
        'config group options that use it.',
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument('--registry', nargs='+', default=None,
                        help='only these registries (model, transform, hook, '
                        '...)')
    parser.add_argument('--all', action='store_true',
                        help="also the parents' modules (mmengine's)")
    parser.add_argument('--json', action='store_true',
                        help='print one JSON object instead of tables')
    return parser.parse_args(argv)


def mmfusion_registries() -> Dict[str, object]:
    """``{registry name: node}`` for every mmfusion registry node."""
    from mmengine.registry import Registry

    import mmfusion.registry as R
    from mmfusion.utils import register_all_modules
    # full: the mmdet/mmseg-based modules register lazily; list them too.
    register_all_modules(init_default_scope=False, full=True)
    out = {}
    for value in vars(R).values():
        if isinstance(value, Registry) and value.scope == 'mmfusion':
            value.import_from_location()
            out[value.name] = value
    return dict(sorted(out.items()))


def option_name(path: Path, root: Path) -> str:
    """``model/fusion/film.yaml`` -> ``model/fusion=film``; files at the top
    or in ``experiment/`` keep their path (``experiment/cls_shapes``)."""
    rel = path.relative_to(root).with_suffix('').as_posix()
    group, _, option = rel.rpartition('/')
    if not group or group == 'experiment':
        return rel
    return f'{group}={option}'


def config_uses(config_dir: Optional[Path] = None
                ) -> Dict[Tuple[Optional[str], str], Set[str]]:
    """``{(scope or None, type name): {config option, ...}}`` for every
    ``type`` in the YAML files under the package's ``configs/``."""
    import yaml

    from mmfusion.config import package_config_dir
    root = Path(config_dir or package_config_dir())
    uses: Dict[Tuple[Optional[str], str], Set[str]] = defaultdict(set)

    def visit(node, scope, where):
        if isinstance(node, dict):
            scope = node.get('_scope_', scope)
            t = node.get('type')
            if isinstance(t, str) and not t.startswith('${'):
                s, _, name = t.rpartition('.')
                uses[(s or scope, name)].add(where)
            for v in node.values():
                visit(v, scope, where)
        elif isinstance(node, list):
            for v in node:
                visit(v, scope, where)

    for path in sorted(root.rglob('*.yaml')):
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError:
            continue
        visit(data, None, option_name(path, root))
    return uses


def collect(registries: Optional[Sequence[str]] = None,
            include_parents: bool = False) -> Dict:
    """``{'registries': {name: {module: [options]}}, 'external': {...}}``."""
    nodes = mmfusion_registries()
    if registries:
        unknown = [r for r in registries if r not in nodes]
        if unknown:
            raise KeyError(f'no registry {unknown}; registries: '
                           f'{", ".join(nodes)}')
        nodes = {k: v for k, v in nodes.items() if k in registries}
    uses = config_uses()
    own: Dict[str, Dict[str, List[str]]] = {}
    claimed: Set[Tuple[Optional[str], str]] = set()
    for name, node in nodes.items():
        table = {}
        modules = dict(node.module_dict)
        scopes = {m: 'mmfusion' for m in modules}
        if include_parents and node.parent is not None:
            for m in node.parent.module_dict:
                if m not in modules:
                    modules[m] = node.parent.module_dict[m]
                    scopes[m] = node.parent.scope
        for module in sorted(modules):
            key_scopes = ([None, 'mmfusion'] if scopes[module] == 'mmfusion'
                          else [None, scopes[module]])
            used = sorted({w for s in key_scopes
                           for w in uses.get((s, module), ())})
            label = module if scopes[module] == 'mmfusion' else \
                f'{scopes[module]}::{module}'
            table[label] = used
            claimed.update((s, module) for s in key_scopes)
        own[name] = table
    external: Dict[str, Dict] = {}
    all_nodes = mmfusion_registries()
    for (scope, module), where in sorted(uses.items(),
                                         key=lambda kv: (str(kv[0][0]),
                                                         kv[0][1])):
        if (scope, module) in claimed:
            continue
        if scope in (None, 'mmfusion') and any(
                module in n.module_dict for n in all_nodes.values()):
            continue  # an mmfusion module of a registry not shown
        owner = scope if scope not in (None, 'mmfusion') else 'mmengine'
        registry = _owning_registry(all_nodes, owner, module)
        if registries and registry not in registries:
            continue
        external[f'{owner}::{module}'] = dict(registry=registry,
                                              used_by=sorted(where))
    return {'registries': own, 'external': external}


def _owning_registry(nodes: Dict[str, object], scope: str,
                     module: str) -> Optional[str]:
    """The registry (name) that holds ``module`` in package ``scope``: the
    root's child of that scope (mmdet's, mmseg's), else the root."""
    for name, node in nodes.items():
        root = node.parent
        if root is None:
            continue
        child = root._children.get(scope) if scope != root.scope else root
        if child is not None:
            try:
                child.import_from_location()
            except Exception:  # a package that fails to import: no answer
                pass
            if module in child.module_dict:
                return name
    for name, node in nodes.items():
        if node.parent is not None and module in node.parent.module_dict:
            return name
    return None


def format_tables(data: Dict, show_empty: bool = False) -> str:
    lines = []
    for name, table in data['registries'].items():
        if not table and not show_empty:
            continue
        lines.append(f'{name} ({len(table)})')
        width = max([len(m) for m in table] + [8])
        for module, used in table.items():
            lines.append(f'  {module.ljust(width)}  '
                         f'{", ".join(used) if used else "-"}')
        lines.append('')
    if data['external']:
        lines.append('used by the configs from other packages '
                     '(scope::name, registry)')
        width = max(len(m) for m in data['external'])
        for module, info in data['external'].items():
            lines.append(f'  {module.ljust(width)}  '
                         f'[{info["registry"] or "?"}]  '
                         f'{", ".join(info["used_by"])}')
    return '\n'.join(lines).rstrip() + '\n'


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        data = collect(args.registry, include_parents=args.all)
    except KeyError as exc:
        print(f'error: {exc.args[0]}', file=sys.stderr)
        sys.exit(2)
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(format_tables(data, show_empty=args.all), end='')


if __name__ == '__main__':
    main()
