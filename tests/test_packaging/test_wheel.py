"""The built wheel: OpenMMLab's `.mim` layout (configs and tools inside the
package), console entry points, and tools that run from anywhere."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
SOURCES = ('setup.py', 'pyproject.toml', 'MANIFEST.in', 'README.md',
           'LICENSE', 'requirements.txt', 'mmfusion', 'configs', 'tools')
IGNORE = shutil.ignore_patterns('__pycache__', '*.pyc', '*.egg-info', '.mim')


def run(cmd, cwd, env=None, timeout=300):
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})
    assert proc.returncode == 0, (f'{cmd} failed ({proc.returncode}):\n'
                                  f'{proc.stdout[-3000:]}\n'
                                  f'{proc.stderr[-3000:]}')
    return proc


@pytest.fixture(scope='module')
def wheel(tmp_path_factory) -> Path:
    """Build the wheel from a copy of the sources (the checkout stays free
    of build/ and egg-info folders)."""
    src = tmp_path_factory.mktemp('src')
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=IGNORE)
        elif path.is_file():
            shutil.copy2(path, src / name)
    dist = tmp_path_factory.mktemp('dist')
    run([PY, '-m', 'pip', 'wheel', '.', '--no-deps', '--no-build-isolation',
         '--no-index', '-q', '-w', str(dist)], cwd=src)
    wheels = list(dist.glob('mmfusion-*.whl'))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_has_mim_configs_tools_and_entry_points(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry = next(n for n in names if n.endswith('entry_points.txt'))
        entry_points = zf.read(entry).decode()
        meta = zf.read(next(n for n in names
                            if n.endswith('.dist-info/METADATA'))).decode()
    # The optional extra for pretrained text encoders.
    assert 'Provides-Extra: hf' in meta
    assert "transformers>=4.40; extra == \"hf\"" in meta, meta
    for required in ('mmfusion/.mim/configs/base_cls.yaml',
                     'mmfusion/.mim/configs/experiment/cls_shapes.yaml',
                     'mmfusion/.mim/configs/model/fusion/film.yaml',
                     'mmfusion/.mim/tools/train.py',
                     'mmfusion/.mim/tools/test.py',
                     'mmfusion/.mim/tools/dist_train.sh',
                     'mmfusion/cli/train.py', 'mmfusion/registry.py'):
        assert required in names, required
    assert not any(n.startswith(('tests/', 'configs/', 'tools/'))
                   for n in names)
    assert not any('__pycache__' in n for n in names)
    for script in ('mmfusion-train = mmfusion.cli.train:main',
                   'mmfusion-test = mmfusion.cli.test:main',
                   'mmfusion-infer = mmfusion.cli.infer:main'):
        assert script in entry_points


def test_installed_wheel_runs_from_anywhere(wheel, tmp_path):
    site = tmp_path / 'site'
    run([PY, '-m', 'pip', 'install', '--no-deps', '--no-index', '-q',
         '--target', str(site), str(wheel)], cwd=tmp_path)
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    env = {'PYTHONPATH': str(site)}
    out = run([PY, '-c', 'import mmfusion; '
               'from mmfusion.config import package_config_dir; '
               'print(mmfusion.__file__); print(package_config_dir())'],
              cwd=elsewhere, env=env).stdout.split()
    assert out[0].startswith(str(site)) and out[1] == str(
        site / 'mmfusion' / '.mim' / 'configs')
    # The console entry point, and the .mim tool as `mim train` calls it.
    job = run([str(site / 'bin' / 'mmfusion-train'), 'cls_shapes', '--cfg',
               'job'], cwd=elsewhere, env=env).stdout
    assert 'MultimodalClassifier' in job
    mim_cfg = site / 'mmfusion' / '.mim' / 'configs' / 'experiment' / \
        'cls_shapes_text_only.yaml'
    job = run([PY, str(site / 'mmfusion' / '.mim' / 'tools' / 'train.py'),
               str(mim_cfg), '--gpus', '1', '--launcher', 'none',
               '--local-rank=0', '--cfg', 'job'],
              cwd=elsewhere, env=env).stdout
    assert 'modalities:\n  - text' in job or "modalities: [text]" in job
