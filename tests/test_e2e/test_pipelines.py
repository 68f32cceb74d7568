"""Every experiment's data pipeline runs on one sample, and the model it
configures builds and computes a loss on that sample."""
from __future__ import annotations

import re

import pytest
import torch
from mmengine.dataset import pseudo_collate

from mmfusion.config import compose_config, package_config_dir, \
    to_mmengine_config
from mmfusion.registry import DATA_SAMPLERS, DATASETS, MODELS

from conftest import TINY_SHAPES
from hf_tiny import skip_unless_hf_for
from own_data_fixtures import prepare_experiment_data, shapes_overrides

EXPERIMENTS = sorted(p.stem for p in
                     (package_config_dir() / 'experiment').glob('*.yaml'))


@pytest.mark.parametrize('name', EXPERIMENTS)
def test_pipeline_and_model_on_one_sample(name, data_root):
    cfg, path = compose_config(name, [f'data_root={data_root}',
                                      *shapes_overrides(name, TINY_SHAPES)])
    mm = to_mmengine_config(cfg, path)
    skip_unless_hf_for(mm.model)  # optional extra [hf]
    prepare_experiment_data(name, data_root)  # users' own data
    for split in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = DATASETS.build(mm[split].dataset)
        sample = dataset[0]
        assert sample['inputs']['img'].dtype == torch.uint8
        assert sample['inputs']['img'].shape[0] == 3
    model = MODELS.build(mm.model)
    train = DATASETS.build(mm.train_dataloader.dataset)
    model.data_preprocessor.tokenizer.fit(train.get_texts())
    batch = pseudo_collate([train[i] for i in range(4)])
    data = model.data_preprocessor(batch, True)
    losses = model(**data, mode='loss')
    assert all(torch.isfinite(v) for v in losses.values())


def test_subtypes_experiment_splits_count_batches(data_root):
    """cls_shapes_subtypes: count questions become two sub-types with
    batches of their own, every weighted key exists (no stale ``count``),
    and the split matches the metric's text groups."""
    name = 'cls_shapes_subtypes'
    cfg, path = compose_config(name, [f'data_root={data_root}',
                                      *shapes_overrides(name, TINY_SHAPES)])
    mm = to_mmengine_config(cfg, path)
    train = DATASETS.build(mm.train_dataloader.dataset)
    sampler = DATA_SAMPLERS.build(
        dict(mm.train_dataloader.sampler), default_args=dict(dataset=train))
    assert set(sampler._keys) == {'colour', 'shape', 'position',
                                  'count_by_colour', 'count_by_shape'}
    assert set(sampler.key_weights) == set(sampler._keys)
    groups = mm.val_evaluator.text_groups
    for key, members in zip(sampler._keys, sampler._groups_by_key):
        if key.startswith('count_by'):
            for g in members:
                assert re.search(groups[key], train.get_data_info(
                    g * sampler.group_size)['text'])
