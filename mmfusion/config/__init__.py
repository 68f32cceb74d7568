from .compose import (compose_config, experiment_name, parse_overrides,
                      resolve_config_path)
from .convert import dump_resolved_yaml, listify_to_tuples, to_mmengine_config
from .paths import package_config_dir
from .validate import ConfigKeyError, validate_config

__all__ = [
    'compose_config', 'experiment_name', 'parse_overrides',
    'resolve_config_path', 'dump_resolved_yaml', 'listify_to_tuples',
    'to_mmengine_config', 'package_config_dir', 'ConfigKeyError',
    'validate_config'
]
