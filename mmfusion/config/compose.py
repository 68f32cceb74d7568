"""Hydra composes: experiment file + package configs + overrides.

One entry point, :func:`compose_config`. The experiment YAML may live
anywhere (its folder goes on the search path first), the package's
``configs/`` is always on the search path, and overrides use Hydra's
grammar (``key=value``, ``+key=value``, ``~key``, ``model/fusion=film``).

A plain ``key=value`` whose key is not in the composed YAML is accepted when
the key's parent is a module dict whose registered class takes that
parameter (``model.fusion.dropout=0.1``); otherwise it fails before anything
is built, naming the nearest valid names from the YAML and the constructor.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from omegaconf import DictConfig, OmegaConf

from .paths import config_groups, package_config_dir
from .validate import (ConfigKeyError, constructor_params, nearest,
                       resolve_type, _CONTEXT, _MODEL_FALLBACK, _ALL)


def resolve_config_path(config: str) -> Path:
    """The YAML file that ``config`` names.

    ``config`` is a path to a YAML file (an experiment anywhere, or a work
    dir's ``config.yaml``), or the name of a packaged experiment
    (``cls_shapes`` or ``experiment/cls_shapes``).
    """
    path = Path(config).expanduser()
    if path.is_file():
        return path.resolve()
    if path.is_dir() and (path / 'config.yaml').is_file():
        return (path / 'config.yaml').resolve()
    pkg = package_config_dir()
    name = config[:-5] if config.endswith('.yaml') else config
    for candidate in (pkg / f'{name}.yaml', pkg / 'experiment' / f'{name}.yaml'):
        if candidate.is_file():
            return candidate.resolve()
    available = sorted(p.stem for p in (pkg / 'experiment').glob('*.yaml'))
    close = nearest(Path(name).name, available)
    hint = f' Did you mean: {", ".join(close)}?' if close else ''
    raise FileNotFoundError(
        f'Config `{config}` is neither a YAML file nor a packaged experiment.'
        f'{hint} Packaged experiments: {", ".join(available)}.')


def experiment_name(config_path: Path) -> str:
    """``work_dirs/<experiment>``: the file's stem (its folder's name for a
    work dir's ``config.yaml``)."""
    if config_path.name == 'config.yaml':
        return config_path.parent.name
    return config_path.stem


def _hydra_compose(config_path: Path, overrides: Sequence[str]) -> DictConfig:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    search = f'hydra.searchpath=[file://{package_config_dir()}]'
    with initialize_config_dir(config_dir=str(config_path.parent),
                               version_base=None):
        cfg = compose(config_name=config_path.stem,
                      overrides=[*overrides, search])
    GlobalHydra.instance().clear()
    return cfg


def parse_overrides(overrides: Sequence[str]):
    """Hydra's own override parser (syntax errors name the override)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    return OverridesParser.create().parse_overrides(list(overrides))


def _search_dirs(config_path: Path) -> List[Path]:
    return [config_path.parent, package_config_dir()]


def split_group_overrides(config_path: Path, overrides: Sequence[str]
                          ) -> Tuple[List[str], List]:
    """(group/add/delete overrides as strings, plain value overrides)."""
    groups = config_groups(_search_dirs(config_path))
    structural, values = [], []
    for ov in parse_overrides(overrides):
        key = ov.key_or_group
        if (ov.is_add() or ov.is_delete() or ov.is_force_add()
                or key in groups or key.lstrip('/') in groups
                or key.startswith('hydra')):
            structural.append(ov.input_line)
        else:
            values.append(ov)
    return structural, values


def _module_class(node, scope: str, registries) -> Optional[type]:
    if not isinstance(node, DictConfig) or not isinstance(
            node.get('type', None), str):
        return None
    scope = node.get('_scope_', scope)
    cls = resolve_type(node['type'], scope, registries)
    return cls or resolve_type(node['type'], scope, _ALL)


def _check_value_key(cfg: DictConfig, key: str, line: str) -> bool:
    """True when ``key`` exists; False when it is a constructor parameter
    of its parent's module (so ``+`` is needed); raises otherwise."""
    if OmegaConf.select(cfg, key, default='__missing__') != '__missing__':
        return True
    parts = key.split('.')
    node = cfg
    scope = cfg.get('default_scope', 'mmfusion') or 'mmfusion'
    registries = None
    for i, part in enumerate(parts):
        registries = _CONTEXT.get(part, registries)
        if isinstance(node, DictConfig) and part in node:
            node = node[part]
            if isinstance(node, DictConfig):
                scope = node.get('_scope_', scope)
            continue
        prefix = '.'.join(parts[:i]) or '<root>'
        yaml_keys = list(node.keys()) if isinstance(node, DictConfig) else []
        ctor: set = set()
        if isinstance(node, DictConfig) and 'type' in node:
            cls = _module_class(node, scope, registries or _MODEL_FALLBACK)
            params = constructor_params(cls) if cls is not None else None
            ctor = set(params or ())
            if i == len(parts) - 1 and (params is None and cls is not None
                                        or part in ctor):
                return False
        close = nearest(part, [*yaml_keys, *ctor])
        full = [f'{prefix}.{c}' if prefix != '<root>' else c for c in close]
        hint = (f' Nearest valid names: {", ".join(full)}.' if full else
                f' Keys at `{prefix}`: {", ".join(map(str, yaml_keys))}.')
        raise ConfigKeyError(
            f'Override `{line}`: `{prefix}` has no key `{part}`.{hint} '
            '(`--cfg job` prints the composed config; use `+key=value` only '
            'to add a key on purpose.)')
    return True


def compose_config(config: str, overrides: Sequence[str] = ()
                   ) -> Tuple[DictConfig, Path]:
    """Compose ``config`` with ``overrides``; returns (config, its path).

    The result still holds interpolations; :func:`to_mmengine_config`
    resolves them.
    """
    config_path = resolve_config_path(config)
    structural, values = split_group_overrides(config_path, overrides)
    try:
        base = _hydra_compose(config_path, structural)
    except Exception as exc:  # hydra's messages are good; add the file
        raise _composition_error(exc, config_path) from exc
    # The user's own modules register themselves before any key is checked.
    import_custom_modules(base)
    final = list(structural)
    for ov in values:
        line = ov.input_line
        if not _check_value_key(base, ov.key_or_group, line):
            line = '+' + line
        final.append(line)
    try:
        cfg = _hydra_compose(config_path, final)
    except Exception as exc:
        raise _composition_error(exc, config_path) from exc
    if 'hydra' in cfg:
        OmegaConf.set_struct(cfg, False)
        del cfg['hydra']
    return cfg, config_path


class ConfigCompositionError(RuntimeError):
    """Hydra could not compose the config (bad YAML, unknown option)."""


def import_custom_modules(cfg) -> List[str]:
    """Import the modules of mmengine's ``custom_imports`` key.

    ``custom_imports: {imports: [my_pkg.fusions], allow_failed_imports:
    false}`` at the top level of a config imports each module (whose
    ``@MODELS.register_module()`` classes register themselves) before the
    config is checked or built, as ``mmengine.Config.fromfile`` does for
    OpenMMLab configs. The modules must be importable: installed, or their
    folder on ``PYTHONPATH``. Returns the modules imported.
    """
    import importlib
    import warnings
    spec = cfg.get('custom_imports', None) if isinstance(
        cfg, (DictConfig, dict)) else None
    if not spec:
        return []
    if isinstance(spec, DictConfig):
        spec = OmegaConf.to_container(spec, resolve=True)
    imports = spec.get('imports', [])
    if isinstance(imports, str):
        imports = [imports]
    allow_failed = bool(spec.get('allow_failed_imports', False))
    done = []
    for name in imports:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            # Only the module (or a parent package) being absent is a
            # config problem; an import failing inside it is a bug there.
            if exc.name is None or not (name == exc.name or
                                        name.startswith(exc.name + '.')):
                raise
            msg = (f'custom_imports: cannot import `{name}` ({exc}). Install '
                   'its package or put its folder on PYTHONPATH.')
            if allow_failed:
                warnings.warn(msg)
                continue
            raise ConfigCompositionError(msg) from exc
        done.append(name)
    return done


def _composition_error(exc: Exception, config_path: Path) -> Exception:
    msg = str(exc)
    if 'To append to your config use +' in msg:
        # Hydra suggests `+`, which would hide a typo: point to the names.
        msg = msg.split('To append')[0].strip()
    if isinstance(exc, ConfigKeyError):
        return exc
    return ConfigCompositionError(
        f'{type(exc).__name__}: {msg} (composing {config_path})')
