"""Lazy registration of the mmdet/mmseg-based modules (``LAZY_MODULES``).

A classification process never imports mmdet or mmseg (seconds per
process); detection and segmentation names still resolve, through
mmfusion's nodes and through mmengine's root registries, and typos of them
still get suggestions. The table is checked against what the modules
really register, so it cannot go stale.
"""
from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict

import pytest
from mmengine.registry import Registry

import mmfusion.registry as R
from mmfusion.registry import LAZY_MODULES

ROOT = Path(__file__).resolve().parents[1]


def run_fresh(code: str) -> Dict[str, Any]:
    """Run ``code`` in a fresh interpreter (repo root as cwd); it prints
    one JSON object as its last stdout line, which is returned."""
    proc = subprocess.run([sys.executable, '-c', textwrap.dedent(code)],
                          cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    if proc.returncode != 0:
        raise AssertionError(f'subprocess failed:\n{proc.stdout[-3000:]}\n'
                             f'{proc.stderr[-5000:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def mmfusion_nodes() -> Dict[str, Registry]:
    """``{registry name: node}`` of every mmfusion registry node."""
    return {v.name: v for v in vars(R).values()
            if isinstance(v, Registry) and v.scope == 'mmfusion'}


def test_classification_process_imports_no_mmdet_or_mmseg():
    out = run_fresh('''
        import json, sys
        from mmfusion.utils import register_all_modules
        register_all_modules()
        from mmfusion.apis.runner_config import compose_and_check
        from mmfusion.config import to_mmengine_config
        from mmfusion.registry import LAZY_MODULES, MODELS
        cfg, _ = compose_and_check('configs/experiment/cls_shapes.yaml')
        model = MODELS.build(to_mmengine_config(cfg).model)
        lazy = [m for t in LAZY_MODULES.values() for m in t.values()]
        print(json.dumps(dict(
            model=type(model).__name__,
            loaded=sorted(n for n in sys.modules
                          if n.split('.')[0] in ('mmdet', 'mmseg')),
            lazy_loaded=[m for m in lazy if m in sys.modules])))
    ''')
    assert out['model'] == 'MultimodalClassifier'
    assert out['loaded'] == [], 'a classification run imported mmdet/mmseg'
    assert out['lazy_loaded'] == []


@pytest.mark.parametrize('registry,name,module', [
    (reg, name, module) for reg, table in LAZY_MODULES.items()
    for name, module in table.items()])
def test_lazy_entry_registers_its_name(registry, name, module):
    node = mmfusion_nodes()[registry]
    importlib.import_module(module)
    cls = node.module_dict.get(name)
    assert cls is not None, f'{module} does not register {name} in {registry}'
    assert cls.__module__ == module
    assert node.get(name) is cls
    assert node.get(f'mmfusion.{name}') is cls


def test_lazy_table_lists_every_class_of_its_modules():
    from mmfusion.utils import register_all_modules
    register_all_modules(full=True)
    lazy_modules = {m for t in LAZY_MODULES.values() for m in t.values()}
    missing = []
    for reg_name, node in mmfusion_nodes().items():
        for name, obj in node.module_dict.items():
            if getattr(obj, '__module__', None) in lazy_modules and \
                    LAZY_MODULES.get(reg_name, {}).get(name) != obj.__module__:
                missing.append(f'{reg_name}: {name} ({obj.__module__})')
    assert not missing, f'not in LAZY_MODULES: {missing}'


def test_lazy_names_resolve_in_a_fresh_process():
    out = run_fresh('''
        import json, sys
        from mmengine.registry import METRICS as ROOT_METRICS
        from mmengine.registry import MODELS as ROOT_MODELS
        from mmengine.registry import TRANSFORMS as ROOT_TRANSFORMS
        from mmfusion.utils import register_all_modules
        register_all_modules()
        before = 'mmdet' in sys.modules
        from mmfusion.apis.runner_config import compose_and_check
        from mmfusion.config import to_mmengine_config
        from mmfusion.registry import MODELS
        cfg, _ = compose_and_check('configs/experiment/det_shapes.yaml')
        model = MODELS.build(to_mmengine_config(cfg).model)
        # Through mmengine's roots: a scoped key, and a bare one under the
        # default scope (as the Runner builds).
        seg = ROOT_MODELS.get('mmfusion.TextConditionedSegmentor')
        metric = ROOT_METRICS.get('mmfusion.PerClassIoUMetric')
        pack = ROOT_TRANSFORMS.build(dict(type='PackMultimodalSegInputs'))
        from mmfusion.models import MultiTaskModel, TextConditionedDetector
        print(json.dumps(dict(
            before=before, model=type(model).__name__,
            same=type(model) is TextConditionedDetector,
            seg=seg.__name__, metric=metric.__name__,
            pack=type(pack).__name__, multi=MultiTaskModel.__name__)))
    ''')
    assert out == dict(before=False, model='TextConditionedDetector',
                       same=True, seg='TextConditionedSegmentor',
                       metric='PerClassIoUMetric',
                       pack='PackMultimodalSegInputs', multi='MultiTaskModel')


def test_typo_of_a_lazy_name_suggests_it_without_importing():
    out = run_fresh('''
        import json, sys
        from mmfusion.config import validate_config
        from mmfusion.registry import MODELS
        from mmfusion.utils import register_all_modules
        register_all_modules()
        try:
            MODELS.build(dict(type='TextConditionedDetecter'))
        except KeyError as exc:
            build = str(exc)
        try:
            validate_config(dict(model=dict(type='TextConditionedSegmentr')))
        except KeyError as exc:
            validate = str(exc)
        print(json.dumps(dict(build=build, validate=validate,
                              mmdet='mmdet' in sys.modules,
                              mmseg='mmseg' in sys.modules)))
    ''')
    assert 'Did you mean: TextConditionedDetector' in out['build']
    assert 'TextConditionedSegmentor' in out['validate']
    assert not out['mmdet'] and not out['mmseg']


def test_package_attributes_of_lazy_names():
    import mmfusion.datasets as datasets
    import mmfusion.evaluation as evaluation
    import mmfusion.models as models
    assert models.TextConditionedDetector.__name__ == 'TextConditionedDetector'
    assert datasets.LoadOptionalAnnotations is \
        R.TRANSFORMS.get('LoadOptionalAnnotations')
    assert evaluation.PerClassIoUMetric is R.METRICS.get('PerClassIoUMetric')
    with pytest.raises(AttributeError, match='NoSuchModel'):
        models.NoSuchModel  # noqa: B018
