"""Process set-up shared by every tool: registry scope, threads, devices."""
from __future__ import annotations

import os
from typing import Mapping, Optional

import torch


def register_all_modules(init_default_scope: bool = True,
                         full: bool = False) -> None:
    """Import every mmfusion module so it is registered; make ``mmfusion``
    the default scope (as the Runner does from ``default_scope``).

    The modules built on mmdet / mmseg (``mmfusion.registry.LAZY_MODULES``)
    register on first lookup instead, so a classification run never imports
    mmdet or mmseg (seconds per process); ``full=True`` imports them too,
    for listings that read the registries' ``module_dict``.
    """
    # mmengine's and mmcv's own modules live in the root registries, which
    # have no lazy locations: import them so lookups through the children
    # (and config validation) see them.
    import mmcv.transforms  # noqa: F401
    import mmengine.dataset  # noqa: F401
    import mmengine.evaluator  # noqa: F401
    import mmengine.hooks  # noqa: F401
    import mmengine.optim  # noqa: F401
    import mmengine.runner  # noqa: F401
    import mmengine.visualization  # noqa: F401
    import mmfusion.datasets  # noqa: F401
    import mmfusion.engine  # noqa: F401
    import mmfusion.evaluation  # noqa: F401
    import mmfusion.models  # noqa: F401
    import mmfusion.visualization  # noqa: F401
    if full:
        from mmfusion.registry import import_lazy_modules
        import_lazy_modules()
    if init_default_scope:
        from mmengine.registry import init_default_scope as _init
        _init('mmfusion')


def set_torch_threads(env_cfg: Optional[Mapping]) -> None:
    """Apply ``env_cfg.torch_num_threads`` (when set) to this process.

    A process-wide setting, applied by :class:`MMFusionRunner` when it sets
    up its environment (as mmengine applies ``mp_cfg``), so composing or
    converting a config never changes the caller's thread count.
    """
    threads = (env_cfg or {}).get('torch_num_threads')
    if threads:
        torch.set_num_threads(int(threads))


def resolve_dist_backend(backend: Optional[str]) -> str:
    """``auto`` means NCCL where CUDA exists, gloo on the CPU build."""
    if backend in (None, 'auto'):
        return 'nccl' if torch.cuda.is_available() else 'gloo'
    return backend


def _slurm_env_to_torch() -> None:
    """Fill torch's rendezvous variables from Slurm's (CPU path)."""
    import subprocess
    os.environ.setdefault('RANK', os.environ['SLURM_PROCID'])
    os.environ.setdefault('WORLD_SIZE', os.environ['SLURM_NTASKS'])
    os.environ.setdefault('LOCAL_RANK', os.environ.get('SLURM_LOCALID', '0'))
    if 'MASTER_ADDR' not in os.environ:
        node_list = os.environ['SLURM_NODELIST']
        addr = subprocess.getoutput(
            f'scontrol show hostname {node_list} | head -n1')
        os.environ['MASTER_ADDR'] = addr
    os.environ.setdefault('MASTER_PORT', os.environ.get('PORT', '29500'))


def _mpi_env_to_torch() -> None:
    os.environ.setdefault('RANK', os.environ['OMPI_COMM_WORLD_RANK'])
    os.environ.setdefault('WORLD_SIZE', os.environ['OMPI_COMM_WORLD_SIZE'])
    os.environ.setdefault('LOCAL_RANK',
                          os.environ['OMPI_COMM_WORLD_LOCAL_RANK'])
    os.environ.setdefault('MASTER_ADDR', '127.0.0.1')
    os.environ.setdefault('MASTER_PORT', os.environ.get('PORT', '29500'))


def init_cpu_distributed(launcher: str, backend: str = 'gloo',
                         timeout_s: int = 1800) -> None:
    """Initialise the process group on the CPU before the Runner exists.

    mmengine 0.10.7's ``init_dist`` calls ``torch.cuda.set_device``, which
    the CPU build of torch lacks; the Runner keeps a process group that
    already exists, so creating it here is enough. GPU runs leave this to
    mmengine (NCCL, one device per local rank).
    """
    import datetime

    import torch.distributed as dist
    if launcher == 'none' or dist.is_available() and dist.is_initialized():
        return
    if launcher == 'slurm':
        _slurm_env_to_torch()
    elif launcher == 'mpi':
        _mpi_env_to_torch()
    dist.init_process_group(backend=backend, init_method='env://',
                            timeout=datetime.timedelta(seconds=timeout_s))


def world_size_from_env() -> int:
    """World size as the launcher will set it (1 for a single process)."""
    for key in ('WORLD_SIZE', 'SLURM_NTASKS', 'OMPI_COMM_WORLD_SIZE'):
        if key in os.environ:
            return int(os.environ[key])
    return 1
