"""Argument handling shared by the command-line tools."""
from __future__ import annotations

import contextlib
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
    """Flags that ``mim train``/``mim test`` pass; accepted, mostly ignored."""
    parser.add_argument('--gpus', type=int, default=None,
                        help='(mim) number of GPUs; use dist_train.sh')
    parser.add_argument('--device', default=None,
                        help='(mim) device; mmengine picks CUDA when present')
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0,
                        help='(torch.distributed.launch) set LOCAL_RANK')


@contextlib.contextmanager
def exit_on_user_error() -> Iterator[None]:
    """Config and file mistakes end the tool with their message (exit 2),
    not a traceback; real bugs keep their traceback."""
    from mmfusion.config import ConfigKeyError
    from mmfusion.config.compose import ConfigCompositionError
    from mmfusion.evaluation.robustness import RobustnessSpecError
    try:
        yield
    except (ConfigKeyError, ConfigCompositionError, FileNotFoundError,
            RobustnessSpecError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        sys.exit(2)
    except Exception as exc:
        # Hydra's composition errors (unknown group option, bad syntax).
        name = type(exc).__module__
        if name.startswith(('hydra', 'omegaconf')):
            print(f'error: {exc}', file=sys.stderr)
            sys.exit(2)
        raise
