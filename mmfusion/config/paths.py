"""Where mmfusion's own configs live (source checkout or installed)."""
from __future__ import annotations

from pathlib import Path


def package_config_dir() -> Path:
    """The package's ``configs/`` folder, always on Hydra's search path.

    In a source checkout it is the repo's top-level ``configs/``; an installed
    package carries a copy in ``mmfusion/.mim/configs`` (OpenMMLab's layout).
    """
    here = Path(__file__).resolve().parent.parent
    for candidate in (here.parent / 'configs', here / '.mim' / 'configs'):
        if (candidate / 'base_cls.yaml').is_file():
            return candidate
    raise FileNotFoundError(
        f'mmfusion configs not found beside {here} (looked for '
        f'{here.parent / "configs"} and {here / ".mim" / "configs"}); '
        'reinstall mmfusion with `pip install -e .`')


def config_groups(search_dirs) -> set:
    """Every config group path (``model/fusion``, ``dataset``, ...)."""
    groups = set()
    for root in search_dirs:
        root = Path(root)
        for sub in root.rglob('*'):
            if sub.is_dir() and any(sub.glob('*.yaml')):
                groups.add(sub.relative_to(root).as_posix())
    return groups
