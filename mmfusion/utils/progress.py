"""Progress bars for long work outside the training loop.

Dataset generation, conversion, testing and sweeps show a tqdm bar on
standard error (one line, updated in place), so a long step tells how far
it is and how long is left. By default a bar shows only when standard
error is a terminal (not in log files); ``MMFUSION_PROGRESS=0`` turns
every bar off, ``MMFUSION_PROGRESS=1`` on; ``enabled`` decides for one.
"""
from __future__ import annotations

import os
from typing import Iterable, Iterator, Optional, TypeVar

T = TypeVar('T')


def progress_enabled(enabled: Optional[bool] = None) -> Optional[bool]:
    """``enabled`` when given, else ``MMFUSION_PROGRESS``, else None
    (tqdm's "only on a terminal")."""
    if enabled is not None:
        return bool(enabled)
    env = os.environ.get('MMFUSION_PROGRESS', '').strip().lower()
    if env in ('0', 'false', 'no', 'off'):
        return False
    if env in ('1', 'true', 'yes', 'on'):
        return True
    return None


def progress_bar(total: Optional[int] = None, desc: Optional[str] = None,
                 unit: str = 'it', enabled: Optional[bool] = None, **kwargs):
    """A tqdm bar (a no-op one when disabled); use as a context manager and
    call ``update(n)``."""
    from tqdm import tqdm
    on = progress_enabled(enabled)
    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True,
                disable=None if on is None else not on, **kwargs)


def track(iterable: Iterable[T], total: Optional[int] = None,
          desc: Optional[str] = None, unit: str = 'it',
          enabled: Optional[bool] = None) -> Iterator[T]:
    """Iterate over ``iterable`` with a progress bar."""
    if total is None and hasattr(iterable, '__len__'):
        total = len(iterable)  # type: ignore[arg-type]
    with progress_bar(total=total, desc=desc, unit=unit,
                      enabled=enabled) as bar:
        for item in iterable:
            yield item
            bar.update(1)
