"""Shared fixtures: a tiny shapes dataset and registry scope, as the Runner sets."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED_DATA = ROOT.parent / 'shared' / 'data'

# Tiny generator settings for tests: seconds to generate.
TINY_SHAPES = [
    'shapes_generator.train_quads=48', 'shapes_generator.val_quads=8',
    'shapes_generator.test_quads=8', 'shapes_generator.control_quads=8',
]


@pytest.fixture(autouse=True)
def _default_scope():
    from mmengine.registry import init_default_scope
    from mmfusion.utils import register_all_modules
    register_all_modules()
    init_default_scope('mmfusion')
    yield


@pytest.fixture(scope='session')
def data_root(tmp_path_factory) -> Path:
    """A data root shared by the session (datasets are keyed by settings)."""
    return tmp_path_factory.mktemp('data')


@pytest.fixture()
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def shared_data(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f'{path} is absent (tests that read ../shared/data skip '
                    'without it; fixture-based tests cover the same code)')
    return path
