import pytest
import torch
from mmengine.registry import init_default_scope

# The test tensors are tiny: one thread is as fast and does not slow down
# badly (OpenMP spinning) when other processes share the CPU cores.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def mmfusion_scope():
    """Build from configs in the ``mmfusion`` scope, as the Runner does."""
    init_default_scope('mmfusion')
    yield
