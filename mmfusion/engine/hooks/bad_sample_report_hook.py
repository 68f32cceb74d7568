"""At the end of a run, report the bad samples that were skipped."""
from __future__ import annotations

from typing import Iterator

from mmengine.hooks import Hook
from mmengine.runner.base_loop import BaseLoop

from mmfusion.registry import HOOKS


def _datasets(dataset) -> Iterator:
    yield dataset
    for attr in ('datasets', 'dataset'):
        inner = getattr(dataset, attr, None)
        if isinstance(inner, (list, tuple)):
            for d in inner:
                yield from _datasets(d)
        elif inner is not None and inner is not dataset:
            yield from _datasets(inner)


@HOOKS.register_module()
class BadSampleReportHook(Hook):
    """Log, after the run, how many samples each dataset skipped
    (``skip_bad_samples=True``, see :mod:`mmfusion.datasets.bad_samples`).

    Samples found bad while a dataset was built are counted exactly; those
    that failed to load count in the process that loaded them (with
    dataloader workers, the workers log each one, and only the main
    process's are in this total: use ``check_images='decode'`` for an exact
    count up front).
    """

    priority = 'LOWEST'

    def after_run(self, runner) -> None:
        lines, seen = [], set()
        for name in ('_train_loop', '_val_loop', '_test_loop'):
            loop = getattr(runner, name, None)
            if not isinstance(loop, BaseLoop):
                continue
            loader = getattr(loop, 'dataloader', None)
            for ds in _datasets(getattr(loader, 'dataset', None)):
                if ds is None or id(ds) in seen:
                    continue
                seen.add(id(ds))
                summary = getattr(ds, 'bad_sample_summary', None)
                text = summary() if callable(summary) else None
                if text:
                    lines.append(f'{name.strip("_")}: {text}')
        if lines:
            runner.logger.warning('BadSampleReportHook: ' + '; '.join(lines))
