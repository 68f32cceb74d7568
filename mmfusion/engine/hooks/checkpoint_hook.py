"""mmengine's CheckpointHook, made crash-safe."""
from __future__ import annotations

import contextlib
import os.path as osp
from typing import List

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook as _CheckpointHook

from mmfusion.registry import HOOKS
from mmfusion.utils.checkpoint import (atomic_write_text,
                                       remove_stale_tmp_files)


class _DeferredRemoval:
    """A file backend whose ``remove``/``rmtree`` wait for :meth:`flush`."""

    def __init__(self, backend) -> None:
        self._backend = backend
        self._pending: List[tuple] = []

    def remove(self, path) -> None:
        self._pending.append(('remove', path))

    def rmtree(self, path) -> None:
        self._pending.append(('rmtree', path))

    def flush(self) -> None:
        for op, path in self._pending:
            getattr(self._backend, op)(path)
        self._pending = []

    def __getattr__(self, name):
        return getattr(self._backend, name)


@HOOKS.register_module()
class CheckpointHook(_CheckpointHook):
    """mmengine's ``CheckpointHook`` (same arguments, same name: configs
    with ``type: CheckpointHook`` get this one) with:

    - old checkpoints (``max_keep_ckpts``, the previous best) removed only
      after the new one is written, so a failed save never leaves fewer
      checkpoints than before;
    - ``last_checkpoint`` (what ``--resume auto`` reads) written atomically
      and only after its checkpoint is complete;
    - temporary files of saves that were killed removed when training
      starts.
    """

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if is_main_process() and osp.isdir(str(self.out_dir)):
            for path in remove_stale_tmp_files(str(self.out_dir)):
                runner.logger.info(f'removed {path}, left by a checkpoint '
                                   'save that was interrupted')

    @contextlib.contextmanager
    def _removals_after_success(self):
        backend = self.file_backend
        deferred = _DeferredRemoval(backend)
        self.file_backend = deferred
        try:
            yield
        finally:
            self.file_backend = backend
        deferred.flush()  # only reached when the save succeeded

    def _save_best_checkpoint(self, runner, metrics) -> None:
        with self._removals_after_success():
            super()._save_best_checkpoint(runner, metrics)

    def _save_checkpoint_with_step(self, runner, step, meta):
        with self._removals_after_success():
            if self.max_keep_ckpts > 0 and not (
                    len(self.keep_ckpt_ids) > 0
                    and self.keep_ckpt_ids[-1] == step):
                if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                    old = self.keep_ckpt_ids.popleft()
                    if is_main_process():
                        path = self.file_backend.join_path(
                            self.out_dir, self.filename_tmpl.format(old))
                        if self.file_backend.isfile(path):
                            self.file_backend.remove(path)
                        elif self.file_backend.isdir(path):
                            self.file_backend.rmtree(path)
                self.keep_ckpt_ids.append(step)
                runner.message_hub.update_info('keep_ckpt_ids',
                                               list(self.keep_ckpt_ids))
            ckpt_filename = self.filename_tmpl.format(step)
            self.last_ckpt = self.file_backend.join_path(self.out_dir,
                                                         ckpt_filename)
            runner.message_hub.update_info('last_ckpt', self.last_ckpt)
            runner.save_checkpoint(
                self.out_dir, ckpt_filename, self.file_client_args,
                save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler,
                meta=meta, by_epoch=self.by_epoch,
                backend_args=self.backend_args, **self.args)
            if is_main_process():
                atomic_write_text(osp.join(runner.work_dir,
                                           'last_checkpoint'),
                                  str(self.last_ckpt))
