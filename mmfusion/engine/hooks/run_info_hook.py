"""Environment and git commit: into the log and every checkpoint's meta."""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Dict, Optional

from mmengine.hooks import Hook

from mmfusion.registry import HOOKS


def git_commit() -> Optional[str]:
    """The commit of the mmfusion checkout in use (None when not in git)."""
    root = Path(__file__).resolve().parents[3]
    try:
        out = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=root,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    if out.returncode != 0 or not commit:
        return None
    dirty = subprocess.run(['git', 'status', '--porcelain', '-uno'],
                           cwd=root, capture_output=True, text=True)
    return commit + ('-dirty' if dirty.stdout.strip() else '')


def env_summary() -> Dict[str, str]:
    """Versions that decide whether a result reproduces (plain strings)."""
    import mmengine
    import numpy
    import torch

    import mmfusion
    info = {'mmfusion': mmfusion.__version__, 'torch': str(torch.__version__),
            'mmengine': mmengine.__version__, 'numpy': numpy.__version__,
            'cuda_available': str(torch.cuda.is_available()),
            'torch_threads': str(torch.get_num_threads())}
    for name in ('mmcv', 'mmdet', 'mmseg'):
        try:
            info[name] = str(__import__(name).__version__)
        except Exception:  # optional at this point; report absence
            info[name] = 'not installed'
    return info


@HOOKS.register_module()
class RunInfoHook(Hook):
    """Log the environment and git commit once; store both in checkpoints."""

    priority = 'LOW'

    def __init__(self) -> None:
        self.info = None

    def before_run(self, runner) -> None:
        self.info = dict(env=env_summary(), git_commit=git_commit() or '')
        runner.logger.info(f'mmfusion run info: {self.info}')

    def before_save_checkpoint(self, runner, checkpoint: Dict) -> None:
        if self.info is None:
            self.info = dict(env=env_summary(), git_commit=git_commit() or '')
        checkpoint.setdefault('meta', {})['mmfusion'] = self.info
