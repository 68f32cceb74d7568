"""tools/print_config.py and tools/list_modules.py (in-process, no data)."""
from __future__ import annotations

import json

import pytest
import yaml

from mmfusion.cli import list_modules, print_config


def test_print_config_composes_with_overrides(capsys, tmp_path):
    out = tmp_path / 'composed.yaml'
    print_config.main(['cls_shapes', 'model/fusion=concat',
                       'model.fusion.out_dim=32', '--save', str(out)])
    printed = capsys.readouterr().out
    cfg = yaml.safe_load(printed)
    assert cfg['model']['fusion'] == {'type': 'ConcatFusion', 'out_dim': 32,
                                      'hidden_dims': [256], 'dropout': 0.0}
    assert '${' not in printed  # resolved by default
    assert yaml.safe_load(out.read_text()) == cfg
    print_config.main(['cls_shapes', '--no-resolve', '--key',
                       'model.text_encoder'])
    assert '${..data_preprocessor.tokenizer.max_vocab_size}' in \
        capsys.readouterr().out
    print_config.main(['cls_shapes', '--key', 'train_cfg.max_iters'])
    assert capsys.readouterr().out.strip() == 'train_cfg.max_iters: 9000'
    # The mmengine Config the Runner gets: lists of scalars become tuples.
    print_config.main(['cls_shapes', '--format', 'py', '--key',
                       'model.data_preprocessor'])
    assert 'mean = (' in capsys.readouterr().out


@pytest.mark.parametrize('argv, message', [
    (['cls_shapes', 'model.fusion.num_blokcs=2'], 'model.fusion.num_blocks'),
    (['cls_shapes', '--key', 'model.fuson'], 'no key `model.fuson`'),
    (['cls_shpes'], 'Did you mean: cls_shapes'),
])
def test_print_config_user_errors_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        print_config.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_list_modules_by_registry_with_config_options(capsys):
    data = list_modules.collect()
    reg = data['registries']
    assert reg['model']['CrossAttentionFusion'] == [
        'model/fusion=cross_attention']
    assert 'base_cls' in reg['model']['MultimodalClassifier']
    assert 'model/text_encoder=gru' in reg['model']['RNNTextEncoder']
    assert 'runtime=default' in reg['visualizer']['MultimodalVisualizer']
    assert 'ProgressBarHook' in reg['hook']
    assert 'MultimodalInferencer' in reg['inferencer']
    assert 'dataset=shapes_cls' in reg['transform']['PackMultimodalInputs']
    ext = data['external']
    assert ext['mmengine::TensorboardVisBackend'] == {
        'registry': 'vis_backend', 'used_by': ['runtime=tensorboard']}
    assert ext['mmdet::ResNet']['registry'] == 'model'
    assert 'model/image_encoder=resnet18' in ext['mmdet::ResNet']['used_by']
    list_modules.main(['--registry', 'visualizer', '--json'])
    only = json.loads(capsys.readouterr().out)
    assert list(only['registries']) == ['visualizer']
    list_modules.main([])
    text = capsys.readouterr().out
    assert 'CrossAttentionFusion' in text and 'model/fusion=film' in text
    with pytest.raises(SystemExit):
        list_modules.main(['--registry', 'modle'])
    assert 'registries: ' in capsys.readouterr().err


def test_list_modules_all_includes_parents():
    data = list_modules.collect(['hook'], include_parents=True)
    hooks = data['registries']['hook']
    assert hooks['mmengine::LoggerHook'] == ['runtime=default']
    assert 'TokenizerHook' in hooks


def test_experiment_outside_the_repo_with_own_options(tmp_path, monkeypatch,
                                                      capsys):
    """docs/configs.md's recipe: a local group option, a packaged one, a
    runtime option and custom_imports, from a folder of one's own."""
    (tmp_path / 'model' / 'fusion').mkdir(parents=True)
    (tmp_path / 'my_pkg').mkdir()
    (tmp_path / 'my_pkg' / '__init__.py').write_text('')
    (tmp_path / 'my_pkg' / 'fusions.py').write_text('IMPORTED = True\n')
    (tmp_path / 'model' / 'fusion' / 'my_film.yaml').write_text(
        'type: FiLMFusion\nnum_blocks: 2\nchannels: 48\nstrides: [2, 1]\n'
        'out_dim: 48\npooling: [max, mean]\n')
    exp = tmp_path / 'my_cls.yaml'
    exp.write_text(
        '# @package _global_\ndefaults:\n  - /base_cls\n'
        '  - override /model/fusion: my_film\n'
        '  - override /model/text_encoder: transformer\n'
        '  - override /runtime: tensorboard\n  - _self_\n'
        'custom_imports: {imports: [my_pkg.fusions]}\n'
        'train_cfg: {max_iters: 2000, val_interval: 500}\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path.parent)
    print_config.main([str(exp), 'model.fusion.channels=64'])
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg['model']['fusion']['channels'] == 64
    assert cfg['model']['fusion']['strides'] == [2, 1]
    assert cfg['model']['text_encoder']['type'] == 'TransformerTextEncoder'
    assert cfg['train_cfg']['max_iters'] == 2000
    assert {'type': 'TensorboardVisBackend'} in cfg['visualizer'][
        'vis_backends']
    import sys
    assert 'my_pkg.fusions' in sys.modules  # custom_imports imported it


def test_configs_doc_lists_every_group_option():
    """docs/configs.md names every option file under configs/ (add a row
    there when adding one)."""
    from mmfusion.cli.list_modules import option_name
    from mmfusion.config import package_config_dir
    root = package_config_dir()
    doc = (root.parent / 'docs' / 'configs.md').read_text()
    missing = []
    for path in sorted(root.rglob('*.yaml')):
        name = option_name(path, root)
        group, _, option = name.rpartition('=')
        if group:
            # A table row `option` in the group's own section.
            head = f'### `{group}`'
            section = doc.split(head, 1)[1].split('\n#', 1)[0] \
                if head in doc else ''
            if f'| `{option}` |' not in section:
                missing.append(name)
        elif f'`{name}`' not in doc:
            missing.append(name)
    assert not missing, f'docs/configs.md does not describe: {missing}'
