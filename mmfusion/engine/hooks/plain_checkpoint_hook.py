"""Keep checkpoints plain data so ``torch.load(weights_only=True)`` reads them."""
from __future__ import annotations

from typing import Any, Dict

import numpy as np
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer

from mmfusion.registry import HOOKS


def _plain(value: Any) -> Any:
    """numpy scalars/arrays to Python numbers/lists, and str subclasses
    (``torch.__version__`` is a ``TorchVersion``) to str, recursively."""
    if isinstance(value, str) and type(value) is not str:
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


@HOOKS.register_module()
class PlainCheckpointHook(Hook):
    """Store the message hub's history as plain lists, and restore it.

    mmengine pickles ``HistoryBuffer`` objects (numpy arrays inside) into
    every checkpoint, which ``torch.load``'s safe mode (the default since
    torch 2.6) refuses. Saving them as ``{'log_history': [...], ...}`` keeps
    the checkpoint loadable with no extra allow-listed globals; loading turns
    them back into buffers before mmengine's resume reads them.
    """

    priority = 'VERY_LOW'  # after every hook that writes into the checkpoint

    def before_save_checkpoint(self, runner, checkpoint: Dict) -> None:
        hub = checkpoint.get('message_hub')
        if isinstance(hub, dict):
            scalars = {}
            for key, buf in hub.get('log_scalars', {}).items():
                if isinstance(buf, HistoryBuffer):
                    log, count = buf.data
                    scalars[key] = dict(log_history=_plain(log),
                                        count_history=_plain(count),
                                        max_length=int(buf.max_length))
            hub['log_scalars'] = scalars
            hub['runtime_info'] = _plain(hub.get('runtime_info', {}))
        if isinstance(checkpoint.get('meta'), dict):
            checkpoint['meta'] = _plain(checkpoint['meta'])

    def after_load_checkpoint(self, runner, checkpoint: Dict) -> None:
        hub = checkpoint.get('message_hub')
        if not isinstance(hub, dict):
            return
        scalars = hub.get('log_scalars', {})
        for key, value in list(scalars.items()):
            if isinstance(value, dict) and 'log_history' in value:
                scalars[key] = HistoryBuffer(value['log_history'],
                                             value['count_history'],
                                             value['max_length'])
