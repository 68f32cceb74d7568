"""Argument handling shared by the command-line tools."""
from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator, List, Sequence, Tuple


#: Flags whose next argument is their value, even if it contains ``=``.
VALUE_FLAGS = frozenset({
    '--work-dir', '--load-from', '--json-out', '--show-dir', '--launcher',
    '--cfg', '--gpus', '--device', '--local-rank', '--local_rank',
    '--drop-modality', '--corrupt', '--corrupt-seed'})


def split_overrides(argv: Sequence[str]) -> Tuple[List[str], List[str]]:
    """(flags and positionals, Hydra overrides).

    Any argument that does not start with ``-`` and contains ``=`` is an
    override, and so is a ``~key`` deletion; so ``--resume model/fusion=film``
    leaves ``--resume`` without a value (meaning ``auto``). The value of a
    flag that always takes one (``--work-dir DIR``) is never an override,
    whatever it contains.
    """
    rest, overrides = [], []
    take_value = False
    for arg in argv:
        if take_value:
            rest.append(arg)
            take_value = False
        elif arg in VALUE_FLAGS:
            rest.append(arg)
            take_value = True
        elif not arg.startswith('-') and ('=' in arg or arg.startswith('~')):
            overrides.append(arg)
        else:
            rest.append(arg)
    return rest, overrides


def add_mim_compat_args(parser) -> None:
    """Flags that ``mim train``/``mim test`` pass (see
    :func:`apply_mim_compat_args` for what they do)."""
    parser.add_argument('--gpus', type=int, default=None,
                        help='(mim) number of GPUs; one process uses one: '
                        'for several use dist_train.sh or --launcher pytorch')
    parser.add_argument('--device', default=None,
                        help='(mim) `cpu` hides the GPUs from this run; '
                        'otherwise mmengine picks CUDA when present')
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0,
                        help='(torch.distributed.launch) set LOCAL_RANK')


def apply_mim_compat_args(args) -> None:
    """Act on the ``mim`` flags, before anything touches CUDA.

    ``mim train PKG CONFIG`` runs ``tools/train.py CONFIG --gpus N
    --launcher none`` (or ``--device cpu`` with no GPUs), and with
    ``--launcher pytorch`` ``torch.distributed.launch``, which adds
    ``--local-rank=R``: ``--device cpu`` sets ``CUDA_VISIBLE_DEVICES=''``,
    ``--local-rank`` sets ``LOCAL_RANK`` (unless the launcher did), and
    ``--gpus N > 1`` without a launcher says that one process uses one GPU.
    """
    device = getattr(args, 'device', None)
    if device is not None and str(device).lower() == 'cpu':
        os.environ['CUDA_VISIBLE_DEVICES'] = ''
    local_rank = getattr(args, 'local_rank', 0)
    if local_rank and 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(local_rank)
    gpus = getattr(args, 'gpus', None)
    if gpus and gpus > 1 and getattr(args, 'launcher', 'none') == 'none':
        print(f'warning: --gpus {gpus} with --launcher none runs one process '
              'on one GPU; for several use `bash tools/dist_train.sh CONFIG '
              f'{gpus}` or `mim train mmfusion CONFIG --gpus {gpus} '
              '--launcher pytorch`', file=sys.stderr)


@contextlib.contextmanager
def exit_on_user_error() -> Iterator[None]:
    """Config and file mistakes end the tool with their message (exit 2),
    not a traceback; real bugs keep their traceback."""
    from mmfusion.config import ConfigKeyError
    from mmfusion.config.compose import ConfigCompositionError
    from mmfusion.config.type_check import ConfigTypeError
    from mmfusion.datasets.bad_samples import DataError
    from mmfusion.engine.hooks.nonfinite_loss_hook import NonFiniteLossError
    from mmfusion.engine.runner import NonFiniteWeightsError
    from mmfusion.evaluation.robustness import RobustnessSpecError
    from mmfusion.models.utils.hf_pretrained import OptionalDependencyError
    from mmfusion.utils.checkpoint import (CheckpointSaveError,
                                           UnsafeCheckpointError,
                                           WeightsMismatchError)
    try:
        yield
    except (ConfigKeyError, ConfigCompositionError, FileNotFoundError,
            RobustnessSpecError, ConfigTypeError, UnsafeCheckpointError,
            WeightsMismatchError, DataError,
            OptionalDependencyError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        sys.exit(2)
    except (CheckpointSaveError, NonFiniteLossError,
            NonFiniteWeightsError) as exc:
        # The run itself failed; what it saved before is intact.
        print(f'error: {exc}', file=sys.stderr)
        sys.exit(1)
    except Exception as exc:
        # Hydra's composition errors (unknown group option, bad syntax).
        name = type(exc).__module__
        if name.startswith(('hydra', 'omegaconf')):
            print(f'error: {exc}', file=sys.stderr)
            sys.exit(2)
        raise
