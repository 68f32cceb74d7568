"""A progress bar over the test (and, optionally, validation) batches."""
from __future__ import annotations

from typing import Optional, Sequence

from mmengine.dist import is_main_process
from mmengine.hooks import Hook

from mmfusion.registry import HOOKS


@HOOKS.register_module()
class ProgressBarHook(Hook):
    """Show a tqdm bar while the test (or validation) loop runs.

    Testing a large split logs nothing until it ends; the bar says how far
    it is and how long is left. On rank 0 only, on standard error, and by
    default only when that is a terminal (``MMFUSION_PROGRESS=0``/``1`` or
    ``enabled`` decide otherwise, see :mod:`mmfusion.utils.progress`).

    Args:
        splits: loops to show a bar for: ``'test'`` and/or ``'val'``.
        enabled: True/False forces the bar on/off; None: see above.
    """

    priority = 'VERY_LOW'

    def __init__(self, splits: Sequence[str] = ('test', ),
                 enabled: Optional[bool] = None) -> None:
        bad = [s for s in splits if s not in ('test', 'val')]
        if bad:
            raise ValueError(f"ProgressBarHook splits must be 'test' or "
                             f"'val', got {bad}")
        self.splits = tuple(splits)
        self.enabled = enabled
        self._bar = None

    def _open(self, runner, split: str) -> None:
        if split not in self.splits or not is_main_process():
            return
        from mmfusion.utils.progress import progress_bar
        loader = getattr(runner, f'{split}_dataloader')
        try:
            total = len(loader)
        except TypeError:
            total = None
        self._bar = progress_bar(total=total, desc=split, unit='batch',
                                 enabled=self.enabled, leave=False)

    def _step(self) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def before_test_epoch(self, runner) -> None:
        self._open(runner, 'test')

    def after_test_iter(self, runner, batch_idx, data_batch=None,
                        outputs=None) -> None:
        self._step()

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._close()

    def before_val_epoch(self, runner) -> None:
        self._open(runner, 'val')

    def after_val_iter(self, runner, batch_idx, data_batch=None,
                       outputs=None) -> None:
        self._step()

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._close()
