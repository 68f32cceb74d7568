"""Composition, overrides, key checking and the Hydra -> mmengine step."""
from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from mmfusion.config import (ConfigKeyError, compose_config,
                             dump_resolved_yaml, package_config_dir,
                             to_mmengine_config, validate_config)
from mmfusion.config.convert import listify_to_tuples, to_container

EXPERIMENTS = sorted(p.stem for p in
                     (package_config_dir() / 'experiment').glob('*.yaml'))
FUSIONS = sorted(p.stem for p in
                 (package_config_dir() / 'model' / 'fusion').glob('*.yaml'))


def test_runner_keys_present():
    cfg, _ = compose_config('cls_shapes')
    for key in ('model', 'train_dataloader', 'val_dataloader',
                'test_dataloader', 'val_evaluator', 'test_evaluator',
                'train_cfg', 'optim_wrapper', 'param_scheduler',
                'default_hooks', 'env_cfg', 'randomness', 'work_dir'):
        assert key in cfg, key
    assert 'seed' in cfg.randomness and 'deterministic' in cfg.randomness
    assert 'hydra' not in cfg and 'defaults' not in cfg


@pytest.mark.parametrize('name', EXPERIMENTS)
def test_every_experiment_composes_and_resolves(name):
    cfg, path = compose_config(name)
    validate_config(to_container(cfg))
    mm = to_mmengine_config(cfg, path)
    assert mm.model.type


@pytest.mark.parametrize('fusion', FUSIONS)
def test_every_fusion_option_resolves(fusion):
    cfg, _ = compose_config('cls_shapes', [f'model/fusion={fusion}'])
    validate_config(to_container(cfg))


@pytest.mark.parametrize('group,option', [
    ('model/image_encoder', p.stem) for p in
    (package_config_dir() / 'model' / 'image_encoder').glob('*.yaml')] + [
    ('model/text_encoder', p.stem) for p in
    (package_config_dir() / 'model' / 'text_encoder').glob('*.yaml')] + [
    ('model/head', p.stem) for p in
    (package_config_dir() / 'model' / 'head').glob('*.yaml')] + [
    ('model/neck', p.stem) for p in
    (package_config_dir() / 'model' / 'neck').glob('*.yaml')])
def test_every_group_option_resolves(group, option):
    cfg, _ = compose_config('cls_shapes', [f'{group}={option}'])
    validate_config(to_container(cfg))


def test_group_and_value_overrides():
    cfg, _ = compose_config('cls_shapes', [
        'model/fusion=concat', 'train_cfg.max_iters=7', '~model.share_fusion',
        '+model.fusion.extra_flag=1'])
    assert cfg.model.fusion.type == 'ConcatFusion'
    assert cfg.train_cfg.max_iters == 7
    assert 'share_fusion' not in cfg.model
    assert cfg.model.fusion.extra_flag == 1


def test_constructor_parameter_not_in_yaml_is_accepted():
    # ClsHead takes loss_weight; the YAML does not list it.
    cfg, _ = compose_config('cls_shapes', ['model.head.loss_weight=2.0'])
    assert cfg.model.head.loss_weight == 2.0


def test_wrong_key_names_nearest_yaml_key():
    with pytest.raises(ConfigKeyError) as err:
        compose_config('cls_shapes', ['model.fusionn.type=x'])
    assert 'model.fusion' in str(err.value)
    assert '+key' in str(err.value) or 'fusionn' in str(err.value)


def test_wrong_key_names_nearest_constructor_param():
    with pytest.raises(ConfigKeyError) as err:
        compose_config('cls_shapes', ['model.head.loss_weigth=2.0'])
    assert 'model.head.loss_weight' in str(err.value)


def test_wrong_key_in_yaml_caught_by_validation():
    cfg, _ = compose_config('cls_shapes', ['+model.fusion.dropuot=0.1'])
    with pytest.raises(ConfigKeyError) as err:
        validate_config(to_container(cfg))
    assert 'dropuot' in str(err.value) and 'dropout' in str(err.value)


def test_unknown_type_suggests_names():
    cfg, _ = compose_config('cls_shapes', ['model.fusion.type=FilmFusion'])
    with pytest.raises(ConfigKeyError) as err:
        validate_config(to_container(cfg))
    assert 'FiLMFusion' in str(err.value) and 'mmfusion' in str(err.value)


def test_registry_build_suggests_names():
    from mmfusion.registry import MODELS
    with pytest.raises(KeyError) as err:
        MODELS.build(dict(type='ConcatFusio', image_dim=4, text_dim=4))
    assert 'ConcatFusion' in str(err.value)
    assert 'mmfusion' in str(err.value)


def test_unknown_config_name_suggests_experiments():
    with pytest.raises(FileNotFoundError) as err:
        compose_config('cls_shape')
    assert 'cls_shapes' in str(err.value)


def test_experiment_outside_repo(tmp_path):
    exp = tmp_path / 'my_exp.yaml'
    exp.write_text('# @package _global_\ndefaults:\n  - /base_cls\n'
                   '  - override /model/fusion: concat\n  - _self_\n'
                   'train_cfg:\n  max_iters: 3\n')
    cfg, path = compose_config(str(exp), ['model/fusion=cross_attention'])
    assert path == exp.resolve()
    assert cfg.model.fusion.type == 'CrossAttentionFusion'
    assert cfg.train_cfg.max_iters == 3


def test_lists_become_tuples_where_targets_need_them():
    cfg, _ = compose_config('cls_shapes', ['model/image_encoder=resnet18'])
    mm = to_mmengine_config(cfg)
    assert mm.model.image_encoder.out_indices == (3,)
    assert isinstance(mm.model.image_encoder.strides, tuple)
    assert isinstance(mm.train_dataloader.dataset.pipeline, list)
    assert isinstance(mm.custom_hooks, list)
    assert listify_to_tuples({'a': [[1, 2], [3, 4]]}) == {'a': ((1, 2),
                                                                (3, 4))}


def test_resolved_dump_reloads(tmp_path):
    cfg, _ = compose_config('cls_shapes', ['model/fusion=concat'])
    out = dump_resolved_yaml(cfg, tmp_path / 'wd' / 'config.yaml')
    text = out.read_text()
    assert '${' not in text and 'defaults' not in text
    again, _ = compose_config(str(out), ['train_cfg.max_iters=5'])
    assert again.model.fusion.type == 'ConcatFusion'
    assert again.train_cfg.max_iters == 5
    assert OmegaConf.to_container(again.model) == OmegaConf.to_container(
        OmegaConf.create(to_container(cfg)).model)


def test_cli_splits_overrides_from_flags():
    from mmfusion.cli.common import split_overrides
    rest, ov = split_overrides(['cfg.yaml', '--resume', 'model/fusion=film',
                                '--work-dir', 'runs/a=b', '~model.neck',
                                '+x=1', '--amp'])
    assert ov == ['model/fusion=film', '~model.neck', '+x=1']
    assert rest == ['cfg.yaml', '--resume', '--work-dir', 'runs/a=b',
                    '--amp']


def test_cpu_data_parallel_gets_one_gradient_bucket():
    """A CPU launch wraps the model without device ids and with the
    runtime's one-bucket setting; a user's own bucket size wins."""
    import torch

    from mmfusion.apis.runner_config import compose_and_check, prepare_cfg
    if torch.cuda.is_available():
        pytest.skip('the CPU wrapper settings apply without CUDA only')
    root = Path(__file__).resolve().parents[2]
    exp = str(root / 'configs' / 'experiment' / 'cls_shapes.yaml')
    cfg, path = compose_and_check(exp)
    cfg = prepare_cfg(cfg, path, launcher='pytorch')
    assert cfg.model_wrapper_cfg.device_ids is None
    assert cfg.model_wrapper_cfg.bucket_cap_mb == \
        cfg.env_cfg.cpu_ddp_bucket_cap_mb == 64
    # As mmengine's GPU default: no buffer broadcast at every forward.
    assert cfg.model_wrapper_cfg.broadcast_buffers is False
    cfg, path = compose_and_check(exp, [
        '+model_wrapper_cfg.type=MMDistributedDataParallel',
        '+model_wrapper_cfg.bucket_cap_mb=8',
        '+model_wrapper_cfg.broadcast_buffers=true'])
    wrapper = prepare_cfg(cfg, path, launcher='pytorch').model_wrapper_cfg
    assert wrapper.bucket_cap_mb == 8 and wrapper.broadcast_buffers is True
    # The DDP benchmark wraps its model with the same arguments.
    from mmfusion.apis.runner_config import cpu_ddp_wrapper_args
    assert cpu_ddp_wrapper_args({'env_cfg': {'cpu_ddp_bucket_cap_mb': 64}}) \
        == {'device_ids': None, 'broadcast_buffers': False,
            'bucket_cap_mb': 64}
    cfg, path = compose_and_check(exp)
    assert 'model_wrapper_cfg' not in prepare_cfg(cfg, path)
