import pytest
import torch

from mmfusion.models.utils import SpatialPooling


def test_stats_and_sizes():
    pool = SpatialPooling(('max', 'mean', 'argmax'), channels=3)
    x = torch.zeros(2, 3, 5, 7)
    assert pool(x).shape == (2, pool.out_dim) == (2, 12)


def test_soft_argmax_finds_the_hot_position():
    pool = SpatialPooling(('argmax', ), channels=1)
    with torch.no_grad():
        pool.log_temperature.fill_(3.0)
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 4, 0] = 10.0  # bottom-left corner
    sx, sy = pool(x)[0].tolist()
    assert sx == pytest.approx(-1.0, abs=1e-3)
    assert sy == pytest.approx(1.0, abs=1e-3)


def test_unknown_stat_is_refused():
    with pytest.raises(ValueError, match='argmax'):
        SpatialPooling(('median', ), channels=2)


def test_peak_counts_blobs_whatever_their_area():
    # Two blobs, one a single position and one 3 x 3 with a peaked centre:
    # `mean` sees six units of mass, `peak` one unit per blob.
    pool = SpatialPooling(('mean', 'peak'), channels=1)
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 1, 1] = 1.0
    x[0, 0, 4:7, 4:7] = 0.5
    x[0, 0, 5, 5] = 1.0
    mean, peak = pool(x)[0].tolist()
    assert mean == pytest.approx(6.0 / 64)
    assert peak == pytest.approx(2.0 / 64)
    x.requires_grad_(True)
    pool(x)[0, 1].backward()
    assert x.grad[0, 0, 5, 5] == pytest.approx(1 / 64)
    assert x.grad[0, 0, 4, 4] == 0
