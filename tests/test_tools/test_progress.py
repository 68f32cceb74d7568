"""Progress bars: the helper, and the test-loop hook."""
from __future__ import annotations

import io
from types import SimpleNamespace

import pytest

from mmfusion.engine.hooks import ProgressBarHook
from mmfusion.utils import progress


def test_track_and_switches(monkeypatch):
    assert list(progress.track(range(3), desc='x', enabled=False)) == [0, 1,
                                                                        2]
    monkeypatch.setenv('MMFUSION_PROGRESS', '0')
    assert progress.progress_enabled() is False
    assert progress.progress_enabled(True) is True
    monkeypatch.setenv('MMFUSION_PROGRESS', '1')
    assert progress.progress_enabled() is True
    monkeypatch.delenv('MMFUSION_PROGRESS')
    assert progress.progress_enabled() is None  # tqdm: only on a terminal


def test_progress_bar_hook_counts_test_batches(monkeypatch):
    stream = io.StringIO()
    real = progress.progress_bar
    monkeypatch.setattr(progress, 'progress_bar',
                        lambda **kw: real(file=stream, mininterval=0, **kw))
    runner = SimpleNamespace(test_dataloader=[0] * 5, val_dataloader=[0] * 3)
    hook = ProgressBarHook(splits=['test'], enabled=True)
    hook.before_val_epoch(runner)  # not asked for: no bar
    assert hook._bar is None
    hook.before_test_epoch(runner)
    for i in range(5):
        hook.after_test_iter(runner, i)
    assert hook._bar.n == 5 and hook._bar.total == 5
    hook.after_test_epoch(runner)
    assert hook._bar is None
    assert '5/5' in stream.getvalue()
    with pytest.raises(ValueError, match="'test' or 'val'"):
        ProgressBarHook(splits=['train'])
