"""docs/fusion_blocks.md's example block: registered from the page's code,
it passes the contract checks of test_fusions.py and works from a config."""
import re
import sys
import textwrap
from pathlib import Path

import pytest

from mmfusion.registry import MODELS
from . import test_fusions as contract

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / 'docs' / 'fusion_blocks.md'
NAME = 'TextGateFusion'  # the example's class name
MODULE = 'mmfusion_docs_example_block'


def example_code() -> str:
    """The first python block of the page's "Writing and registering"
    section."""
    text = DOC.read_text()
    section = text.split('## Writing and registering a new block', 1)[1]
    found = re.search(r'```python\n(.*?)```', section, re.S)
    assert found, 'no python code block in the section'
    return found.group(1)


def _unregister():
    MODELS.import_from_location()
    MODELS._module_dict.pop(NAME, None)
    sys.modules.pop(MODULE, None)


@pytest.fixture()
def clean_registry():
    MODELS.import_from_location()
    assert NAME not in MODELS.module_dict, (
        f'the docs example {NAME} clashes with a registered module')
    yield
    _unregister()


def test_example_is_short():
    assert len(example_code().strip().splitlines()) <= 40


def test_example_passes_the_contract(clean_registry):
    exec(compile(example_code(), str(DOC), 'exec'), {'__name__': MODULE})
    # Registered, hence discovered as the contract test discovers blocks.
    assert NAME in contract.fusion_names()
    block = contract.build(NAME)
    assert {'vector', 'map'} <= block.input_kinds
    for b in (1, 2):
        contract.test_output_shape(NAME, b)
    contract.test_gradients_reach_both_modalities(NAME)
    contract.test_padding_tokens_change_nothing(NAME)
    contract.test_absent_modality_is_finite(NAME)


def test_example_from_a_config_with_custom_imports(clean_registry, tmp_path,
                                                   monkeypatch):
    """The page's recipe: the block in the user's package, imported through
    `custom_imports`, selected by a group option in the user's config
    folder; model/fusion=NAME needs no other edit."""
    from mmengine.registry import MODELS as ROOT_MODELS

    from mmfusion.apis.runner_config import (build_mmengine_cfg,
                                             compose_and_check)
    from mmfusion.config import ConfigKeyError
    (tmp_path / f'{MODULE}.py').write_text(example_code())
    monkeypatch.syspath_prepend(str(tmp_path))
    configs = tmp_path / 'my_configs'
    (configs / 'model' / 'fusion').mkdir(parents=True)
    (configs / 'model' / 'fusion' / 'text_gate.yaml').write_text(
        f'type: {NAME}\nout_dim: 64\n')
    exp = configs / 'my_exp.yaml'
    exp.write_text(textwrap.dedent(f"""\
        # @package _global_
        defaults:
          - /base_cls
          - _self_
        custom_imports:
          imports: [{MODULE}]
          allow_failed_imports: false
        """))
    cfg, path = compose_and_check(str(exp), ['model/fusion=text_gate',
                                             'model.fusion.out_dim=32'])
    assert cfg.model.fusion.type == NAME
    model = ROOT_MODELS.build(build_mmengine_cfg(cfg, path).model)
    assert type(model.fusion).__name__ == NAME
    assert model.fusion.out_dim == 32 == model.head.in_channels
    # Its settings are checked like a packaged block's.
    with pytest.raises(ConfigKeyError, match='out_dim'):
        compose_and_check(str(exp), ['model/fusion=text_gate',
                                     'model.fusion.out_dmi=32'])


def test_custom_imports_missing_module_is_a_config_error(tmp_path):
    from mmfusion.config.compose import (ConfigCompositionError,
                                         import_custom_modules)
    with pytest.raises(ConfigCompositionError, match='PYTHONPATH'):
        import_custom_modules({'custom_imports': {
            'imports': ['no_such_module_for_mmfusion']}})
    with pytest.warns(UserWarning, match='no_such_module_for_mmfusion'):
        assert import_custom_modules({'custom_imports': {
            'imports': ['no_such_module_for_mmfusion'],
            'allow_failed_imports': True}}) == []
