"""Random states as plain data: save, restore, fork, and per-batch seeds.

mmengine 0.10.7 saves no random state in checkpoints; mmfusion's runner
stores :func:`get_rng_state` of every rank and restores it on resume, and
data loading draws from per-batch seeds (:func:`batch_seed`) so that what a
batch's transforms draw does not depend on which process loaded it, on how
many batches came before in that process, or on a restart.
"""
from __future__ import annotations

import contextlib
import random
from typing import Any, Dict, Iterator, List

import numpy as np
import torch


def get_rng_state() -> Dict[str, Any]:
    """Python, numpy (global) and torch (CPU and CUDA) states: lists, ints
    and uint8 tensors only, so ``torch.load(weights_only=True)`` reads them
    with no allow-listed globals."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        'python': {'version': version, 'state': list(internal),
                   'gauss': gauss},
        'numpy': {'kind': str(kind), 'keys': [int(k) for k in keys],
                  'pos': int(pos), 'has_gauss': int(has_gauss),
                  'cached_gaussian': float(cached)},
        'torch': torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = list(torch.cuda.get_rng_state_all())
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    """Inverse of :func:`get_rng_state`."""
    py = state['python']
    random.setstate((py['version'], tuple(py['state']), py['gauss']))
    npy = state['numpy']
    np.random.set_state((npy['kind'], np.asarray(npy['keys'],
                                                 dtype=np.uint32),
                         npy['pos'], npy['has_gauss'],
                         npy['cached_gaussian']))
    torch.set_rng_state(state['torch'].cpu() if hasattr(
        state['torch'], 'cpu') else torch.as_tensor(state['torch'],
                                                    dtype=torch.uint8))
    if 'cuda' in state and torch.cuda.is_available():
        cuda = state['cuda']
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


@contextlib.contextmanager
def preserved_rng() -> Iterator[Dict[str, Any]]:
    """Run a block without changing the global random states (what the
    block draws comes from, and is given back to, the current state); the
    block receives the state it started from."""
    state = get_rng_state()
    try:
        yield state
    finally:
        set_rng_state(state)


def batch_seed(seed: int, rank: int, epoch: int, batch: int) -> List[int]:
    """Four 32-bit words from (seed, rank, epoch, batch), well mixed."""
    seq = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(rank),
                                  int(epoch), int(batch)])
    return [int(w) for w in seq.generate_state(4)]


def seed_all(words: List[int]) -> None:
    """Seed Python, numpy and torch from :func:`batch_seed`'s words."""
    random.seed(words[0] << 32 | words[1])
    np.random.seed(words[2])
    torch.manual_seed(words[3] << 32 | words[1])
