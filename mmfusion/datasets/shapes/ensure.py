"""Generate the shapes benchmark once per settings, safely across processes."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Union

from mmengine.logging import print_log

from .grounding_generator import ShapesGroundingGenerator
from .refseg_split import ShapesRefSegGenerator
from .shapes_generator import ShapesGenerator

#: How long non-zero local ranks wait for local rank 0 to finish (seconds).
WAIT_TIMEOUT_S = 30 * 60

#: The generator of each task; the task is the folder name's prefix.
GENERATORS = {'cls': ShapesGenerator, 'det': ShapesGroundingGenerator,
              'seg': ShapesRefSegGenerator}


def shapes_folder_name(settings: dict, task: str = 'cls') -> str:
    """``<task>-<first 10 hex of sha1(json.dumps(settings,
    sort_keys=True))>``: ``cls-...`` for classification, ``det-...`` for
    grounding. The task is the prefix, not part of the hash, so the
    classification folders keep their names."""
    if task not in GENERATORS:
        raise ValueError(f'unknown shapes task {task!r}; expected one of '
                         f'{sorted(GENERATORS)}')
    digest = hashlib.sha1(
        json.dumps(settings, sort_keys=True).encode()).hexdigest()
    return f'{task}-{digest[:10]}'


def _is_complete(folder: Path) -> bool:
    return (folder / 'meta.json').is_file()


def ensure_shapes_dataset(data_root: Union[str, Path] = 'data/shapes',
                          progress: bool = True, *, task: str = 'cls',
                          wait_timeout_s: float = WAIT_TIMEOUT_S,
                          poll_interval_s: float = 1.0,
                          **settings) -> Path:
    """The folder of the shapes benchmark for ``settings``, generated once.

    The folder is ``data_root/<task>-<hash>`` where the hash covers every
    argument of the task's generator (defaults filled in), so changing a
    setting gives a new folder and equal settings share one:
    ``cls-<hash>`` holds the classification benchmark
    (:class:`ShapesGenerator`), ``det-<hash>`` the grounding one
    (:class:`ShapesGroundingGenerator`). A folder with a
    ``meta.json`` is returned at once.

    Otherwise the process with local rank 0 (env ``LOCAL_RANK``, default 0)
    generates into ``data_root/.tmp-<name>-<pid>`` and renames it into place,
    which is atomic: readers never see a half-written folder, and if another
    process finished first ours is deleted. Other local ranks poll until the
    folder appears.

    Args:
        data_root: parent folder; a relative path is resolved against the
            current working directory.
        progress: show a progress bar while generating.
        task: ``'cls'``, ``'det'`` or ``'seg'``
            (:class:`ShapesRefSegGenerator`).
        wait_timeout_s: how long other ranks wait before failing.
        poll_interval_s: how often other ranks look for the folder.
        **settings: the task generator's arguments.

    Returns:
        The absolute path of the complete folder.

    Raises:
        TypeError: an unknown setting.
        TimeoutError: a non-zero rank waited ``wait_timeout_s`` in vain.
    """
    if task not in GENERATORS:
        raise ValueError(f'unknown shapes task {task!r}; expected one of '
                         f'{sorted(GENERATORS)}')
    generator_cls = GENERATORS[task]
    try:
        generator = generator_cls(**settings)
    except TypeError as err:
        raise TypeError(
            f'unknown shapes generator setting ({err}); valid settings: '
            f'{sorted(generator_cls().settings())}') from None
    root = Path(data_root).expanduser()
    if not root.is_absolute():
        root = Path.cwd() / root
    name = shapes_folder_name(generator.settings(), task)
    folder = root / name
    if _is_complete(folder):
        return folder

    local_rank = int(os.environ.get('LOCAL_RANK', '0'))
    if local_rank != 0:
        return _wait_for(folder, wait_timeout_s, poll_interval_s, local_rank)

    if folder.exists():
        raise RuntimeError(
            f'{folder} exists but has no meta.json: an incomplete copy? '
            'Delete it and run again to regenerate it.')
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f'.tmp-{name}-{os.getpid()}'
    if tmp.exists():  # left over by a crashed process with our pid
        shutil.rmtree(tmp)
    print_log(f'Generating the shapes benchmark into {folder} '
              f'(settings {generator.settings()})', logger='current')
    start = time.perf_counter()
    try:
        generator.generate(tmp, progress=progress)
        try:
            os.rename(tmp, folder)
        except OSError:
            # Another process renamed its copy first: keep theirs.
            if not _is_complete(folder):
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print_log(f'Shapes benchmark ready in {time.perf_counter() - start:.1f} '
              f's: {folder}', logger='current')
    return folder


def _wait_for(folder: Path, timeout_s: float, poll_s: float,
              local_rank: int) -> Path:
    """Poll until local rank 0 has renamed ``folder`` into place."""
    deadline = time.monotonic() + timeout_s
    while not _is_complete(folder):
        if time.monotonic() > deadline:
            raise TimeoutError(
                f'local rank {local_rank} waited {timeout_s:.0f} s for local '
                f'rank 0 to generate {folder}. Check rank 0\'s log for an '
                'error, or generate it beforehand with '
                'tools/generate_shapes.py and the same settings.')
        time.sleep(poll_s)
    return folder
