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
    block receives the state it started from, as :func:`get_rng_state`'s
    plain data."""
    state = get_rng_state()
    try:
        yield state
    finally:
        set_rng_state(state)


@contextlib.contextmanager
def preserved_raw_rng() -> Iterator[None]:
    """:func:`preserved_rng` keeping the generators' own state objects
    instead of plain data: a few times cheaper, for once per batch."""
    raw = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    cuda = (torch.cuda.get_rng_state_all() if torch.cuda.is_available()
            and torch.cuda.is_initialized() else None)
    try:
        yield
    finally:
        random.setstate(raw[0])
        np.random.set_state(raw[1])
        torch.set_rng_state(raw[2])
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def batch_seed(seed: int, rank: int, epoch: int, batch: int) -> List[int]:
    """Four 32-bit words from (seed, rank, epoch, batch), well mixed."""
    seq = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(rank),
                                  int(epoch), int(batch)])
    return [int(w) for w in seq.generate_state(4)]


def seed_all(words: List[int]) -> None:
    """Seed Python, numpy and torch from :func:`batch_seed`'s words."""
    random.seed(words[0] << 32 | words[1])
    np.random.seed(words[2])
    seed = words[3] << 32 | words[1]
    # Not torch.manual_seed: it also queues a seeding of every lazy device
    # module (CUDA, XPU, MTIA), each recording a formatted stack trace
    # while that device is not initialised -- about 1 ms per call under the
    # Runner's deep stack, once per batch (it was most of the data time).
    torch.default_generator.manual_seed(seed)
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.manual_seed_all(seed)
