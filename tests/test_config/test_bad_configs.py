"""Bad configs fail before anything trains, with the key path and the
nearest valid names; wrong value types are caught against mmfusion's type
hints; mmdet constructor errors come through with the key path added."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple, Union

import pytest

from mmfusion.apis.runner_config import compose_and_check
from mmfusion.config import ConfigKeyError
from mmfusion.config.build_errors import annotate_build_errors
from mmfusion.config.compose import ConfigCompositionError
from mmfusion.config.type_check import ConfigTypeError, matches


def test_wrong_override_key_names_nearest():
    with pytest.raises(ConfigKeyError, match='model.fusion.num_blocks'):
        compose_and_check('cls_shapes', ['model.fusion.num_blokcs=2'])


def test_wrong_group_option_lists_options():
    with pytest.raises(ConfigCompositionError) as info:
        compose_and_check('cls_shapes', ['model/fusion=flim'])
    assert 'model/fusion' in str(info.value) and 'film' in str(info.value)


def test_wrong_type_names_nearest_registered():
    with pytest.raises(ConfigKeyError) as info:
        compose_and_check('cls_shapes', ['model.fusion.type=ConcatFuson'])
    assert 'model.fusion.type' in str(info.value)
    assert 'ConcatFusion' in str(info.value)


def test_wrong_argument_name_names_nearest():
    with pytest.raises(ConfigKeyError) as info:
        compose_and_check('cls_shapes', ['+model.head.dropuot=0.1'])
    assert 'model.head.dropuot' in str(info.value)
    assert 'dropout' in str(info.value)


@pytest.mark.parametrize('override, path, expects', [
    ('model.head.dropout=abc', 'model.head.dropout', 'float'),
    ('model.head.hidden_dims=64', 'model.head.hidden_dims', 'Sequence'),
    ('model.data_preprocessor.tokenizer.max_length=1.5',
     'model.data_preprocessor.tokenizer.max_length', 'int'),
    ('model.data_preprocessor.tokenizer.lowercase=3',
     'model.data_preprocessor.tokenizer.lowercase', 'bool'),
    ('train_dataloader.sampler.group_size=four',
     'train_dataloader.sampler.group_size', 'int'),
    ("train_dataloader.dataset.split=7", 'train_dataloader.dataset.split',
     'str'),
])
def test_wrong_value_type_fails_with_key_path(override, path, expects):
    with pytest.raises(ConfigTypeError) as info:
        compose_and_check('cls_shapes', [override])
    msg = str(info.value)
    assert f'Config key `{path}`' in msg and expects in msg


def test_number_written_as_string_gets_a_yaml_hint():
    with pytest.raises(ConfigTypeError, match='YAML reads numbers'):
        compose_and_check('cls_shapes', ["model.head.dropout='1e-3'"])


def test_valid_values_pass():
    # an int where a float goes, a tuple-like list, a null Optional
    compose_and_check('cls_shapes', ['model.head.dropout=0',
                                     'model.head.hidden_dims=[32,16]'])


def test_cli_wrong_value_type_exits_before_anything(tmp_path, monkeypatch,
                                                    capsys):
    from mmfusion.cli.train import main
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        main(['cls_shapes', 'model.head.dropout=abc'])
    assert info.value.code == 2
    assert 'model.head.dropout' in capsys.readouterr().err
    assert not (tmp_path / 'work_dirs').exists()


@pytest.mark.parametrize('value, hint, ok', [
    (1, float, True), (True, int, False), (1.0, int, False), ('a', int,
                                                             False),
    (None, Optional[int], True), ([1, 2], Sequence[int], True),
    ([1, 'x'], List[int], False), ((1, 2), Tuple[int, int], True),
    ([1, 2, 3], Tuple[int, int], False), ({'a': 1.0}, Dict[str, float],
                                          True),
    ('yes', Union[int, str], True), ({'type': 'X'}, dict, True),
    (3, dict, False), ('${x}', int, True),
])
def test_matches(value, hint, ok):
    assert matches(value, hint) is ok


def test_mmdet_constructor_error_gets_config_key_path():
    pytest.importorskip('mmdet')
    import mmdet.models  # noqa: F401  (registers mmdet's modules)
    from mmengine.registry import MODELS
    cfg = {'model': {
        'type': 'RetinaHead', '_scope_': 'mmdet', 'num_classes': 2,
        'in_channels': 8,
        'loss_cls': {'type': 'CrossEntropyLoss', 'use_sigmoid': True,
                     'use_mask': True}}}
    with pytest.raises(AssertionError) as info:
        with annotate_build_errors(cfg):
            MODELS.build(cfg['model'])
    assert str(info.value) == '[config key `model.loss_cls`]'
    assert isinstance(info.value.__cause__, AssertionError)


def test_constructor_error_keeps_message_and_type_and_picks_the_dict():
    from mmfusion.registry import DATASETS
    cfg = {'train_dataloader': {'dataset': {
               'type': 'MultimodalClsDataset', 'ann_file': '/nope/a.jsonl',
               'classes_file': '/nope/c.txt'}},
           'val_dataloader': {'dataset': {
               'type': 'MultimodalClsDataset', 'ann_file': '/nope/b.jsonl',
               'classes_file': '/nope/c.txt'}}}
    with pytest.raises(FileNotFoundError) as info:
        with annotate_build_errors(cfg):
            DATASETS.build(cfg['val_dataloader']['dataset'])
    msg = str(info.value)
    assert msg.startswith('classes file /nope/c.txt not found')
    assert msg.endswith('[config key `val_dataloader.dataset`]')


def test_key_path_found_when_built_by_a_loop():
    # The Runner's train loop builds the dataloader's dataset: the loop is
    # not above the dataset in the config tree.
    from mmfusion.config.build_errors import config_paths_for
    cfg = {'train_cfg': {'type': 'IterBasedTrainLoop'},
           'train_dataloader': {'dataset': {'type': 'ShapesClsDataset',
                                            'split': 'train'}},
           'val_dataloader': {'dataset': {'type': 'ShapesClsDataset',
                                          'split': 'val'}}}
    chain = [('IterBasedTrainLoop', {'type': 'IterBasedTrainLoop'}),
             ('ShapesClsDataset', {'type': 'ShapesClsDataset',
                                   'split': 'train', 'pipeline': []})]
    assert config_paths_for(cfg, chain) == ['train_dataloader.dataset']
