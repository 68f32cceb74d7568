from .checkpoint import (UnsafeCheckpointError, atomic_save,
                         safe_load_checkpoint)
from .setup_env import (init_cpu_distributed, register_all_modules,
                        resolve_dist_backend, set_torch_threads,
                        world_size_from_env)

__all__ = ['init_cpu_distributed', 'register_all_modules',
           'resolve_dist_backend', 'set_torch_threads',
           'world_size_from_env',
           'UnsafeCheckpointError', 'atomic_save', 'safe_load_checkpoint']
