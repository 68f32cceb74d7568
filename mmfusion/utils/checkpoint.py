"""Checkpoint files: safe loading, atomic writing, finding the newest one.

Every checkpoint mmfusion reads goes through :func:`safe_load_checkpoint`:
``torch.load(weights_only=True)`` with an explicit allow-list
(:data:`SAFE_GLOBALS`) of the classes and functions mmfusion's own
checkpoints contain. mmfusion keeps checkpoint meta plain data
(:class:`~mmfusion.engine.hooks.PlainCheckpointHook`), so the list is only
what tensors need; ``builtins.getattr`` and numpy's reconstructors stay off
it. A file that needs anything else is refused by
:class:`UnsafeCheckpointError`, which names the offending globals; nothing
in the file runs. ``--unsafe-load`` (:func:`set_unsafe_load`) opts out, for
trusted files only.

mmengine's own loader for local paths and http(s) URLs is replaced by this
one (:func:`install_mmengine_loader`), so ``Runner.load_checkpoint``,
``init_cfg=dict(type='Pretrained', ...)`` and ``mmengine.runner.
load_checkpoint`` are safe too.

Checkpoints are written by :func:`atomic_save`: a temporary file in the same
folder, flushed and fsynced, then renamed over the target, so a reader (or
``--resume auto``) never sees half a file.
"""
from __future__ import annotations

import collections
import contextlib
import errno
import glob
import logging
import os
import os.path as osp
import pickletools
import re
import tempfile
import zipfile
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import torch

#: What mmfusion checkpoints contain besides plain Python data: tensors
#: (rebuilt by ``_rebuild_tensor_v2`` from typed storages) in ordered dicts.
#: torch allows these by default as well; listing them here makes the
#: contract explicit, and a test checks a real checkpoint needs no more.
SAFE_GLOBALS: List[Any] = [
    collections.OrderedDict,
    torch._utils._rebuild_tensor_v2,
    torch.FloatStorage, torch.DoubleStorage, torch.HalfStorage,
    torch.BFloat16Storage, torch.LongStorage, torch.IntStorage,
    torch.ShortStorage, torch.CharStorage, torch.ByteStorage,
    torch.BoolStorage,
]

#: How the error tells users to opt out for a file they trust.
UNSAFE_HINT = ('If you trust this file, pass --unsafe-load to tools/train.py '
               'or tools/test.py (or unsafe=True to safe_load_checkpoint).')

_unsafe_load = False


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint needs globals outside the allow-list; it was not run."""

    def __init__(self, path: str, names: Optional[Sequence[str]] = None,
                 detail: str = ''):
        if names is None:  # re-raised with a prefixed message (mmengine)
            self.path, self.names = '', []
            super().__init__(path)
            return
        self.path = path
        self.names = sorted(set(names))
        listed = ', '.join(self.names) if self.names else 'unknown globals'
        msg = (f'refused to load checkpoint {path}: it needs {listed}, which '
               "is not on mmfusion's allow-list of what checkpoints contain "
               '(tensors and plain data). Nothing in the file was run. '
               + UNSAFE_HINT)
        if detail:
            msg += f' ({detail})'
        super().__init__(msg)


class CheckpointSaveError(RuntimeError):
    """A checkpoint could not be written; the previous ones are intact."""


class WeightsMismatchError(RuntimeError):
    """Strict loading found missing/unexpected keys or shape mismatches."""


def set_unsafe_load(enabled: bool) -> None:
    """Process-wide: load checkpoints with ``weights_only=False``.

    Only for files you trust: unpickling runs whatever code the file names.
    ``tools/train.py --unsafe-load`` and ``tools/test.py --unsafe-load`` set
    it; it is never saved in a config.
    """
    global _unsafe_load
    _unsafe_load = bool(enabled)


def unsafe_load_enabled() -> bool:
    return _unsafe_load


# ----------------------------------------------------------------- globals
def _allowed_names() -> set:
    from torch import _weights_only_unpickler as wou
    names = {f'{g.__module__}.{g.__name__}' for g in SAFE_GLOBALS}
    try:
        names |= set(wou._get_allowed_globals())
        names |= set(wou._get_user_allowed_globals())
    except Exception:  # private API moved: the list above still applies
        pass
    return names


def _pickle_bytes(path: str) -> bytes:
    """The pickle stream of a checkpoint (``data.pkl`` of a zip file)."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            for name in zf.namelist():
                if name == 'data.pkl' or name.endswith('/data.pkl'):
                    return zf.read(name)
        return b''
    with open(path, 'rb') as f:
        return f.read()


def pickle_globals(data: bytes) -> List[str]:
    """Every ``module.name`` a pickle stream imports, read statically
    (:mod:`pickletools` disassembles; nothing is imported or called)."""
    found = set()
    recent: List[Any] = []  # values pushed lately (strings, else None)
    memo: Dict[int, Any] = {}
    try:
        for op, arg, _ in pickletools.genops(data):
            name = op.name
            if name in ('GLOBAL', 'INST'):
                module, attr = str(arg).split(' ', 1)
                found.add(_py3_name(module, attr))
                recent.append(None)
            elif name == 'STACK_GLOBAL':
                mod, attr = (recent[-2:] + [None, None])[:2] if len(
                    recent) >= 2 else (None, None)
                found.add(f'{mod}.{attr}' if isinstance(mod, str)
                          and isinstance(attr, str) else '<dynamic global>')
                recent = recent[:-2] + [None]
            elif 'UNICODE' in name or name in ('STRING', 'BINSTRING',
                                               'SHORT_BINSTRING'):
                recent.append(arg)
            elif name == 'MEMOIZE':
                memo[len(memo)] = recent[-1] if recent else None
            elif name in ('PUT', 'BINPUT', 'LONG_BINPUT'):
                memo[int(arg)] = recent[-1] if recent else None
            elif name in ('GET', 'BINGET', 'LONG_BINGET'):
                recent.append(memo.get(int(arg)))
            elif name != 'PROTO' and name != 'FRAME':
                recent.append(None)
            recent = recent[-8:]
    except Exception:  # truncated or not a pickle: report what was read
        pass
    return sorted(found)


def _py3_name(module: str, attr: str) -> str:
    """Protocol-2 pickles spell ``builtins`` as ``__builtin__`` (and so
    on); map the names as unpickling does."""
    import _compat_pickle as compat
    module, attr = compat.NAME_MAPPING.get((module, attr), (module, attr))
    module = compat.IMPORT_MAPPING.get(module, module)
    return f'{module}.{attr}'


def find_unsafe_globals(path: str) -> List[str]:
    """Globals a checkpoint needs that the allow-list does not hold
    (static scan; the file is not unpickled)."""
    allowed = _allowed_names()
    return [g for g in pickle_globals(_pickle_bytes(path))
            if g not in allowed]


def check_checkpoint_file(path: str) -> None:
    """Fail early (before anything is built) for a missing or unsafe file.

    Raises:
        FileNotFoundError: no such file.
        UnsafeCheckpointError: the file needs globals outside the list
            (unless :func:`set_unsafe_load` is on).
    """
    if '://' in path:
        return  # remote: checked when downloaded and loaded
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint {path} does not exist')
    if _unsafe_load:
        return
    bad = find_unsafe_globals(path)
    if bad:
        raise UnsafeCheckpointError(path, bad)


# ----------------------------------------------------------------- loading
def safe_load_checkpoint(path: str, map_location: Any = 'cpu',
                         unsafe: Optional[bool] = None) -> Any:
    """``torch.load`` a checkpoint with ``weights_only=True`` and the
    allow-list; the one function mmfusion loads checkpoints with.

    Args:
        path: a local file.
        map_location: as :func:`torch.load`.
        unsafe: True loads with ``weights_only=False`` (trusted files only);
            None follows :func:`set_unsafe_load` (off by default).

    Raises:
        FileNotFoundError: no such file.
        UnsafeCheckpointError: the file needs other globals; it names them.
    """
    path = osp.expanduser(os.fspath(path))
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint {path} does not exist')
    if unsafe if unsafe is not None else _unsafe_load:
        from mmengine.logging import print_log
        print_log(f'--unsafe-load: loading {path} with weights_only=False; '
                  'only do this for files you trust.', logger='current',
                  level=logging.WARNING)
        return torch.load(path, map_location=map_location,
                          weights_only=False)
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(path, map_location=map_location,
                              weights_only=True)
    except Exception as exc:
        if not _is_weights_only_error(exc):
            raise
        names = find_unsafe_globals(path)
        if not names:
            names = re.findall(r'GLOBAL ([\w.]+ [\w.]+)', str(exc))
            names = [n.replace(' ', '.') for n in names]
        raise UnsafeCheckpointError(path, names) from None


def _is_weights_only_error(exc: Exception) -> bool:
    import pickle
    text = str(exc)
    return isinstance(exc, pickle.UnpicklingError) or \
        'Weights only load failed' in text or 'Unsupported global' in text


def _local_loader(filename: str, map_location=None):
    return safe_load_checkpoint(filename, map_location=map_location)


def _http_loader(filename: str, map_location=None, model_dir=None,
                 progress=False):
    """Download (once per node, as mmengine does) and load safely."""
    from mmengine.dist import get_dist_info
    from torch.hub import download_url_to_file, get_dir
    rank, world_size = get_dist_info()
    model_dir = model_dir or osp.join(get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    target = osp.join(model_dir, osp.basename(filename.split('?')[0]))
    if rank == 0 and not osp.isfile(target):
        download_url_to_file(filename, target, progress=progress)
    if world_size > 1:
        torch.distributed.barrier()
    return safe_load_checkpoint(target, map_location=map_location)


def install_mmengine_loader() -> None:
    """Make mmengine load local files and http(s) URLs through
    :func:`safe_load_checkpoint` (its default is ``torch.load`` with no
    allow-list, which cannot read mmengine's own checkpoints)."""
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader._register_scheme([''], _local_loader, force=True)
    CheckpointLoader._register_scheme([r'(https?)://'], _http_loader,
                                      force=True)


# ------------------------------------------------------------ meta config
class UnsafeConfigError(UnsafeCheckpointError):
    """A config string in a checkpoint that is not plain data."""


def config_from_text(text: str, source: str = 'the checkpoint') -> dict:
    """The config a checkpoint carries (``meta['cfg']``, mmengine's Python
    format), read as data.

    ``mmengine.Config.fromstring(text, '.py')`` *runs* the text as Python,
    so a crafted checkpoint would run code even though ``torch.load`` read
    it safely. This accepts only what mmengine writes: ``name = value``
    lines whose values are literals, lists, tuples, dicts and
    ``dict(key=value, ...)`` calls.

    Raises:
        UnsafeConfigError: anything else (a call, an import, a name...).
    """
    import ast
    try:
        tree = ast.parse(text, mode='exec')
    except SyntaxError as err:
        raise UnsafeConfigError(f'the config in {source} does not parse: '
                                f'{err}') from None

    def value(node):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            items = [value(n) for n in node.elts]
            return {ast.List: list, ast.Tuple: tuple,
                    ast.Set: set}[type(node)](items)
        if isinstance(node, ast.Dict):
            if any(k is None for k in node.keys):
                raise ValueError('** in a dict')
            return {value(k): value(v) for k, v in zip(node.keys,
                                                        node.values)}
        if isinstance(node, ast.UnaryOp) and isinstance(
                node.op, (ast.USub, ast.UAdd)) and isinstance(
                    node.operand, ast.Constant) and isinstance(
                        node.operand.value, (int, float)):
            v = node.operand.value
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id == 'dict' and not node.args and all(
                    k.arg is not None for k in node.keywords):
            return {k.arg: value(k.value) for k in node.keywords}
        raise ValueError(ast.dump(node)[:80])

    cfg = {}
    for stmt in tree.body:
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name)):
            raise UnsafeConfigError(
                f'refused the config in {source}: line {stmt.lineno} is not '
                'a `name = value` assignment of plain data. Nothing in it '
                'was run. ' + UNSAFE_HINT)
        try:
            cfg[stmt.targets[0].id] = value(stmt.value)
        except ValueError as err:
            raise UnsafeConfigError(
                f'refused the config in {source}: line {stmt.lineno} holds '
                f'more than plain data ({err}). Nothing in it was run. '
                + UNSAFE_HINT) from None
    return cfg


# ----------------------------------------------------------------- weights
def compare_state_dict(model_state: Dict[str, torch.Tensor],
                       ckpt_state: Dict[str, Any]
                       ) -> Tuple[List[str], List[str], List[str]]:
    """(missing, unexpected, shape mismatches as ``name: ckpt vs model``)."""
    missing = [k for k in model_state if k not in ckpt_state
               and not k.endswith('num_batches_tracked')]
    unexpected = [k for k in ckpt_state if k not in model_state]
    shapes = []
    for key, value in ckpt_state.items():
        if key in model_state and hasattr(value, 'shape') and tuple(
                value.shape) != tuple(model_state[key].shape):
            shapes.append(f'{key}: checkpoint {tuple(value.shape)} vs model '
                          f'{tuple(model_state[key].shape)}')
    return missing, unexpected, shapes


def mismatch_report(missing: Sequence[str], unexpected: Sequence[str],
                    shapes: Sequence[str], source: str = '') -> str:
    parts = []
    if missing:
        parts.append(f'missing keys (in the model, not in the checkpoint): '
                     f'{", ".join(missing)}')
    if unexpected:
        parts.append(f'unexpected keys (in the checkpoint, not in the '
                     f'model): {", ".join(unexpected)}')
    if shapes:
        parts.append(f'shape mismatches (not loaded): {"; ".join(shapes)}')
    where = f' {source}' if source else ''
    return (f'checkpoint{where} does not match the model exactly: '
            + ' | '.join(parts))


def load_weights(model: torch.nn.Module, state_dict: Dict[str, Any],
                 strict: bool = False, source: str = '',
                 revise_keys: Iterable[Tuple[str, str]] = ((r'^module\.',
                                                           ''),),
                 logger: Any = 'current') -> Tuple[List[str], List[str],
                                                   List[str]]:
    """Load ``state_dict`` into ``model``, reporting every missing and
    unexpected key and every shape mismatch by name.

    Tensors whose shapes differ are left out (the model keeps its own);
    with ``strict`` any difference raises :class:`WeightsMismatchError`
    before anything is loaded.
    """
    from mmengine.logging import print_log
    from mmengine.model import is_model_wrapper
    if is_model_wrapper(model):
        model = model.module
    state = collections.OrderedDict()
    for key, value in state_dict.items():
        for pattern, repl in revise_keys:
            key = re.sub(pattern, repl, key)
        state[key] = value
    metadata = getattr(state_dict, '_metadata', None)
    if metadata is not None:  # module versions, read by _load_from_state_dict
        state._metadata = metadata
    own = model.state_dict()
    missing, unexpected, shapes = compare_state_dict(own, state)
    if missing or unexpected or shapes:
        msg = mismatch_report(missing, unexpected, shapes, source)
        if strict:
            raise WeightsMismatchError(
                msg + '. Loading is strict here (load_strict: true); fix the '
                'config or set load_strict: false to load what matches.')
        print_log(msg, logger=logger, level=logging.WARNING)
    bad = {s.split(':')[0] for s in shapes}
    for key in bad:
        del state[key]
    model.load_state_dict(state, strict=False)
    return missing, unexpected, shapes


# ----------------------------------------------------------------- writing


def atomic_save(obj: Any, path: str) -> None:
    """``torch.save`` to ``path`` so that it is complete or absent.

    The bytes go to a temporary file in the same folder (same file system,
    so the rename is atomic), which is flushed and fsynced, then renamed
    over ``path``; the folder is fsynced so the rename survives a crash.

    Raises:
        CheckpointSaveError: the write failed (disk full, permissions...);
            the temporary file is removed and ``path`` is untouched.
    """
    with atomic_file(path) as f:
        torch.save(obj, f)


def atomic_write_bytes(path: str, data) -> None:
    with atomic_file(path) as f:
        f.write(data)


@contextlib.contextmanager
def atomic_file(path: str):
    """A binary file object whose contents replace ``path`` atomically
    when the block ends without an error (see :func:`atomic_save`)."""
    folder = osp.dirname(osp.abspath(path)) or '.'
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(path)}.',
                                   suffix='.tmp', dir=folder)
        with os.fdopen(fd, 'wb') as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(folder)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        if exc.errno == errno.ENOSPC:
            reason += ' (the disk is full)'
        raise CheckpointSaveError(
            f'could not write {path}: {reason} [{type(exc).__name__}: '
            f'{exc}]') from exc
    finally:
        if tmp is not None and osp.exists(tmp):
            with contextlib.suppress(OSError):
                os.remove(tmp)


def atomic_write_text(path: str, text: str) -> None:
    atomic_write_bytes(path, text.encode('utf-8'))


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_tmp_files(folder: str) -> List[str]:
    """Delete temporary files left by writes that were killed."""
    removed = []
    for path in glob.glob(osp.join(folder, '.*.pth.*.tmp')) + glob.glob(
            osp.join(folder, '.last_checkpoint.*.tmp')):
        with contextlib.suppress(OSError):
            os.remove(path)
            removed.append(path)
    return removed


# ----------------------------------------------------------------- resume
_STEP_RE = re.compile(r'^(?:iter|epoch)_(\d+)\.pth$')


def is_complete_checkpoint(path: str) -> bool:
    """Whether ``path`` is a whole checkpoint file (zip directory intact)."""
    if not osp.isfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as zf:
            return any(n.endswith('data.pkl') for n in zf.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def find_resume_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``--resume auto`` continues from: the one named in
    ``WORK_DIR/last_checkpoint`` when it is complete, else the newest
    complete ``iter_N.pth``/``epoch_N.pth`` in the folder."""
    from mmengine.logging import print_log
    named = None
    record = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(record):
        with open(record) as f:
            named = f.read().strip() or None
        if named and not osp.isabs(named):
            named = osp.join(work_dir, named)
        if named and is_complete_checkpoint(named):
            return named
    candidates = []
    for path in glob.glob(osp.join(work_dir, '*.pth')):
        match = _STEP_RE.match(osp.basename(path))
        if match and is_complete_checkpoint(path):
            candidates.append((int(match.group(1)), osp.getmtime(path), path))
    if not candidates:
        return None
    best = max(candidates)[2]
    if named:
        print_log(f'last_checkpoint names {named}, which is missing or '
                  f'incomplete; resuming from {best}, the newest complete '
                  'checkpoint.', logger='current', level=logging.WARNING)
    return best
