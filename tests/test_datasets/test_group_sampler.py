"""GroupSampler: groups stay together; ranks read disjoint samples whose
union per step is the single-process global batch."""
from unittest import mock

import pytest

from mmfusion.datasets.samplers import group_sampler as gs


def make(n, world, rank, **kw):
    with mock.patch.object(gs, 'get_dist_info', return_value=(rank, world)):
        return gs.GroupSampler(list(range(n)), seed=3, **kw)


def test_groups_stay_together_and_cover_everything():
    order = list(make(40, 1, 0))
    assert sorted(order) == list(range(40))
    for i in range(0, 40, 4):
        assert order[i] % 4 == 0 and order[i:i + 4] == list(
            range(order[i], order[i] + 4))


def test_shuffle_depends_on_epoch():
    s = make(40, 1, 0)
    first = list(s)
    s.set_epoch(1)
    assert list(s) != first and sorted(s) == sorted(first)


@pytest.mark.parametrize('world', [2, 4])
def test_ranks_disjoint_and_union_is_global_batch(world):
    per_rank_batch = 8  # two groups of four
    single = list(make(64, 1, 0))
    ranks = [list(make(64, world, r)) for r in range(world)]
    seen = [i for r in ranks for i in r]
    assert sorted(seen) == list(range(64))  # disjoint, complete
    steps = len(ranks[0]) // per_rank_batch
    for step in range(steps):
        union = {i for r in ranks
                 for i in r[step * per_rank_batch:(step + 1) * per_rank_batch]}
        glob = single[step * per_rank_batch * world:
                      (step + 1) * per_rank_batch * world]
        assert union == set(glob)


def test_round_up_pads_uneven_groups():
    ranks = [list(make(36, 2, r)) for r in range(2)]  # 9 groups
    assert len(ranks[0]) == len(ranks[1]) == 20


class _Typed(list):
    def get_data_info(self, i):
        return {'question_type': ('a', 'b', 'c')[(i // 4) % 3]}


@pytest.mark.parametrize('world', [1, 2])
def test_homogeneous_batches(world):
    data = _Typed(range(96))  # 24 groups, 8 of each type
    for rank in range(world):
        with mock.patch.object(gs, 'get_dist_info',
                               return_value=(rank, world)):
            s = gs.GroupSampler(data, seed=1, homogeneous_key='question_type',
                                batch_size=8)
        order = list(s)
        assert len(order) == len(s) and len(order) % 8 == 0
        for b in range(0, len(order), 8):
            kinds = {data.get_data_info(i)['question_type']
                     for i in order[b:b + 8]}
            assert len(kinds) == 1


def test_homogeneous_needs_batch_size():
    with pytest.raises(ValueError, match='batch_size'):
        gs.GroupSampler(_Typed(range(16)), homogeneous_key='question_type')


def test_homogeneous_small_dataset_keeps_every_group():
    data = _Typed(range(24))  # 6 groups: 2 per type, fewer than a block
    s = make_typed(data)
    assert sorted(s) == list(range(24))


def make_typed(data):
    with mock.patch.object(gs, 'get_dist_info', return_value=(0, 1)):
        return gs.GroupSampler(data, seed=1, homogeneous_key='question_type',
                               batch_size=16)


def test_key_weights_change_visits_per_epoch():
    data = _Typed(range(96))  # 8 groups per type
    with mock.patch.object(gs, 'get_dist_info', return_value=(0, 1)):
        s = gs.GroupSampler(data, seed=1, homogeneous_key='question_type',
                            batch_size=8, key_weights={'a': 2.0, 'c': 0.5})
    kinds = [data.get_data_info(i)['question_type'] for i in s][::4]
    assert kinds.count('a') == 16 and kinds.count('b') == 8
    assert kinds.count('c') == 4
    # a weight for a type the data lacks (a control split) is ignored
    with mock.patch.object(gs, 'get_dist_info', return_value=(0, 1)):
        s = gs.GroupSampler(data, homogeneous_key='question_type',
                            batch_size=8, key_weights={'zzz': 2.0})
    assert len(list(s)) == 96


class _Worded(list):
    """Type ``count`` groups alternate between two wordings."""

    def get_data_info(self, i):
        g = i // 4
        if g % 2:
            return {'question_type': 'colour', 'text': 'is the circle red?'}
        noun = 'red shapes' if g % 4 == 0 else 'circles'
        return {'question_type': 'count', 'text': f'are there two {noun}?'}


def test_text_keys_split_a_type_into_weighted_sub_types():
    data = _Worded(range(128))  # 32 groups: 16 colour, 8 + 8 count
    with mock.patch.object(gs, 'get_dist_info', return_value=(0, 1)):
        s = gs.GroupSampler(
            data, seed=1, homogeneous_key='question_type', batch_size=8,
            text_keys={'count_by_shape': r'(circle|square)s?\?$'},
            key_weights={'count_by_shape': 2.0, 'count': 0.5})
    order = list(s)
    texts = [data.get_data_info(i)['text'] for i in order]
    assert sum('circles' in t for t in texts[::4]) == 16
    assert sum('red shapes' in t for t in texts[::4]) == 4
    assert sum('circle red' in t for t in texts[::4]) == 16
    for b in range(0, len(order), 8):  # the sub-types get batches of their own
        assert len({t.split()[-1] for t in texts[b:b + 8]}) == 1


def test_text_keys_need_homogeneous_key_and_valid_regexes():
    with pytest.raises(ValueError, match='homogeneous_key'):
        gs.GroupSampler(_Worded(range(16)), text_keys={'x': 'a'})
    with pytest.raises(ValueError, match=r"text_keys\['x'\].*valid regex"):
        gs.GroupSampler(_Worded(range(16)), homogeneous_key='question_type',
                        batch_size=8, text_keys={'x': '('})
