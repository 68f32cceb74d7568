"""Both ways of running a block without changing the global random states."""
import random

import numpy as np
import pytest
import torch

from mmfusion.utils.rng import preserved_raw_rng, preserved_rng


def _draw():
    return (random.random(), float(np.random.rand()), float(torch.rand(1)))


@pytest.mark.parametrize('keep', [preserved_rng, preserved_raw_rng])
def test_block_leaves_the_states_as_they_were(keep):
    torch.manual_seed(3)
    random.seed(3)
    np.random.seed(3)
    expected = _draw()
    torch.manual_seed(3)
    random.seed(3)
    np.random.seed(3)
    with keep():
        inside = _draw()
        _draw()
    assert inside == expected  # the block draws from the current state
    assert _draw() == expected  # and gives it back
