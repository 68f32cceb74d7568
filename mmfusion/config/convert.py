"""The one place a composed Hydra config becomes an mmengine Config."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Union

from mmengine.config import Config
from omegaconf import DictConfig, OmegaConf


def _scalar(x: Any) -> bool:
    return x is None or isinstance(x, (bool, int, float, str))


def _is_tuple_like(value: list) -> bool:
    """A list of scalars, or of such lists (``[[1333, 800], [1333, 640]]``)."""
    return all(_scalar(v) or (isinstance(v, list) and _is_tuple_like(v))
               for v in value)


def listify_to_tuples(node: Any) -> Any:
    """Turn every list of scalars into a tuple, recursively.

    YAML has no tuples, but mmcv transforms (``Resize(scale=...)``) and mmdet
    modules (``ResNet(out_indices=...)``, anchor settings) check for them,
    while every list mmengine needs as a list (pipelines, hooks, schedulers)
    holds dicts, so this single rule serves all targets.
    """
    if isinstance(node, dict):
        return {k: listify_to_tuples(v) for k, v in node.items()}
    if isinstance(node, list):
        if _is_tuple_like(node):
            return tuple(listify_to_tuples(v) for v in node)
        return [listify_to_tuples(v) for v in node]
    return node


def to_container(cfg: Union[DictConfig, dict]) -> dict:
    """Plain, fully resolved dict (no ``hydra`` node)."""
    if isinstance(cfg, DictConfig):
        data = OmegaConf.to_container(cfg, resolve=True)
    else:
        data = dict(cfg)
    data.pop('hydra', None)
    data.pop('defaults', None)
    return data


def to_mmengine_config(cfg: Union[DictConfig, dict],
                       filename: Union[str, Path, None] = None) -> Config:
    """Resolve interpolations and convert to :class:`mmengine.Config`."""
    data = listify_to_tuples(to_container(cfg))
    return Config(data, filename=str(filename) if filename else None)


def dump_resolved_yaml(cfg: Union[DictConfig, dict], path: Union[str, Path]
                       ) -> Path:
    """Write the fully resolved config (no defaults list, no
    interpolations) as YAML; every tool accepts the file as CONFIG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = OmegaConf.to_yaml(OmegaConf.create(to_container(cfg)))
    tmp = path.with_suffix(path.suffix + '.tmp')
    tmp.write_text('# Resolved mmfusion config: reload it with any tool as '
                   'CONFIG.\n' + text)
    tmp.replace(path)
    return path
