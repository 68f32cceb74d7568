"""mmfusion's registry nodes: one child of every mmengine root registry.

Every node has scope ``mmfusion`` and lazy ``locations``: the package that
defines a node's modules is imported the first time the node is searched, so
``import mmfusion`` stays cheap. mmdet and mmseg modules are used from configs
by reference with ``_scope_='mmdet'`` / ``_scope_='mmseg'`` on the dict, which
makes the whole subtree (losses, anchor generators, coders) resolve in the
right package (see docs/configs.md).

Unknown names fail with the scope that was searched and the closest
registered names (:class:`SuggestingRegistry`).

The few mmfusion modules that subclass or import mmdet / mmseg are not
imported with their package (importing ``mmdet.models`` and ``mmseg`` takes
seconds): :data:`LAZY_MODULES` names them, and a node imports one the first
time its class is looked up, so a classification run never imports mmdet or
mmseg.
"""
from __future__ import annotations

import difflib
import importlib
import sys
from typing import Any, Callable, Dict, Iterable, List, Optional

from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import INFERENCERS as MMENGINE_INFERENCERS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import \
    RUNNER_CONSTRUCTORS as MMENGINE_RUNNER_CONSTRUCTORS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import STRATEGIES as MMENGINE_STRATEGIES
from mmengine.registry import TASK_UTILS as MMENGINE_TASK_UTILS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import \
    WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
from mmengine.registry import Registry


#: Registry name -> {class name -> module that registers it} for the
#: mmfusion classes whose modules import mmdet or mmseg at module level. The
#: packages do not import these modules; :meth:`SuggestingRegistry.get`
#: imports one when its name is looked up. ``tests/test_registry_lazy.py``
#: checks the table against what the modules really register.
LAZY_MODULES: Dict[str, Dict[str, str]] = {
    'model': {
        'TextConditionedDetector':
        'mmfusion.models.detectors.text_conditioned_detector',
        'TextConditionedSegmentor':
        'mmfusion.models.segmentors.text_conditioned_segmentor',
        'MultiTaskModel': 'mmfusion.models.multi_task.multi_task_model',
    },
    'transform': {
        'LoadOptionalAnnotations':
        'mmfusion.datasets.transforms.load_optional_annotations',
        'PackMultimodalSegInputs':
        'mmfusion.datasets.transforms.pack_multimodal_seg_inputs',
    },
    'metric': {
        'CocoDetMetric': 'mmfusion.evaluation.metrics.coco_det_metric',
        'PerClassIoUMetric':
        'mmfusion.evaluation.metrics.per_class_iou_metric',
    },
}


def import_lazy_modules() -> None:
    """Import every module of :data:`LAZY_MODULES` (and so mmdet and
    mmseg): for listings that must show real classes."""
    for table in LAZY_MODULES.values():
        for module in table.values():
            importlib.import_module(module)


def lazy_exports(package: str, names: Iterable[str]
                 ) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` (PEP 562) for ``package``'s
    ``__init__``: each of ``names`` (classes of :data:`LAZY_MODULES`) is
    imported from its module on first access, so ``from mmfusion.models
    import TextConditionedDetector`` keeps working while ``import
    mmfusion.models`` leaves mmdet alone."""
    where = {name: module for table in LAZY_MODULES.values()
             for name, module in table.items()}
    wanted = {name: where[name] for name in names}  # KeyError: not in table

    def __getattr__(attr: str) -> Any:
        if attr not in wanted:
            raise AttributeError(
                f'module {package!r} has no attribute {attr!r}')
        value = getattr(importlib.import_module(wanted[attr]), attr)
        # Cache on the package: later accesses skip __getattr__.
        setattr(sys.modules[package], attr, value)
        return value

    return __getattr__


def registered_names(registry: Registry) -> List[str]:
    """Names visible from ``registry``: its own modules (the lazy ones too,
    without importing them) and its ancestors'."""
    registry.import_from_location()
    names = set(registry.module_dict)
    if registry.scope == 'mmfusion':
        names.update(LAZY_MODULES.get(registry.name, {}))
    parent = registry.parent
    while parent is not None:
        names.update(parent.module_dict)
        parent = parent.parent
    return sorted(names)


def unknown_type_message(name: str, registry: Registry,
                         where: Optional[str] = None) -> str:
    """The error text for a ``type`` that ``registry`` cannot resolve."""
    _, real = Registry.split_scope_key(name)
    names = registered_names(registry)
    close = difflib.get_close_matches(real, names, n=5, cutoff=0.5)
    if not close:
        lowered = {n.lower(): n for n in names}
        close = [lowered[n] for n in difflib.get_close_matches(
            real.lower(), list(lowered), n=5, cutoff=0.4)]
    loc = f' (at config key `{where}`)' if where else ''
    hint = (f' Did you mean: {", ".join(close)}?' if close else
            ' `python tools/list_modules.py` lists every registered name.')
    return (f'`{name}`{loc} is not in the {registry.scope}::{registry.name} '
            f'registry (searched scope `{registry.scope}` and its parents).'
            f'{hint} For mmdet/mmseg modules add `_scope_: mmdet` '
            '(or mmseg) to the dict.')


class SuggestingRegistry(Registry):
    """A :class:`Registry` whose ``build`` names close matches for a typo,
    and whose ``get`` imports the module of a :data:`LAZY_MODULES` name on
    first use.

    Only the top-level ``type`` is checked before building; the constructor's
    own exceptions pass through unchanged.
    """

    def build(self, cfg: Dict[str, Any], *args, **kwargs) -> Any:
        obj_type = cfg.get('type') if isinstance(cfg, dict) else None
        if isinstance(obj_type, str) and '_scope_' not in cfg:
            scope, _ = Registry.split_scope_key(obj_type)
            if scope in (None, self.scope) and self.get(obj_type) is None:
                raise KeyError(unknown_type_message(obj_type, self))
        return super().build(cfg, *args, **kwargs)

    def get(self, key: str):  # noqa: D401 - same contract as Registry.get
        obj = self._get_loaded(key)
        if obj is None:
            module = self.lazy_module(key)
            if module is not None:
                # Registers the class in this node; then look again.
                importlib.import_module(module)
                obj = self._get_loaded(key)
        return obj

    def lazy_module(self, key: str) -> Optional[str]:
        """The :data:`LAZY_MODULES` module that registers ``key`` here (a
        bare name or ``mmfusion.Name``), or None."""
        if not isinstance(key, str):
            return None
        scope, real = Registry.split_scope_key(key)
        if scope not in (None, self.scope):
            return None
        return LAZY_MODULES.get(self.name, {}).get(real)

    def _get_loaded(self, key: str):
        """``Registry.get`` over the modules imported so far."""
        try:
            return super().get(key)
        except RuntimeError:
            # mmengine raises "Failed to get X" for dotted names it cannot
            # import; treat that as "not registered" so callers see our text.
            return None


def _node(name: str, parent: Registry, locations: List[str],
          **kwargs) -> SuggestingRegistry:
    return SuggestingRegistry(name, parent=parent, scope='mmfusion',
                              locations=locations, **kwargs)


# Runners, their constructors and loops (training / validation loops).
RUNNERS = _node('runner', MMENGINE_RUNNERS, ['mmfusion.engine'])
RUNNER_CONSTRUCTORS = _node('runner constructor',
                            MMENGINE_RUNNER_CONSTRUCTORS, ['mmfusion.engine'])
LOOPS = _node('loop', MMENGINE_LOOPS, ['mmfusion.engine'])
# Hooks run during training (tokenizer fitting, random-state saving, ...).
HOOKS = _node('hook', MMENGINE_HOOKS, ['mmfusion.engine'])
# Training strategies (mmengine's FlexibleRunner).
STRATEGIES = _node('strategy', MMENGINE_STRATEGIES, ['mmfusion.engine'])

# Datasets, their samplers and data transforms.
DATASETS = _node('dataset', MMENGINE_DATASETS, ['mmfusion.datasets'])
DATA_SAMPLERS = _node('data sampler', MMENGINE_DATA_SAMPLERS,
                      ['mmfusion.datasets'])
TRANSFORMS = _node('transform', MMENGINE_TRANSFORMS, ['mmfusion.datasets'])

# Models: encoders, fusion blocks, heads, classifiers, preprocessors.
MODELS = _node('model', MMENGINE_MODELS, ['mmfusion.models'])
MODEL_WRAPPERS = _node('model_wrapper', MMENGINE_MODEL_WRAPPERS,
                       ['mmfusion.models'])
WEIGHT_INITIALIZERS = _node('weight initializer',
                            MMENGINE_WEIGHT_INITIALIZERS, ['mmfusion.models'])
# Tokenizers and other helpers that models build but are not nn.Modules.
TASK_UTILS = _node('task util', MMENGINE_TASK_UTILS,
                   ['mmfusion.datasets', 'mmfusion.models'])

# Optimizers, their wrappers and constructors, and parameter schedulers.
OPTIMIZERS = _node('optimizer', MMENGINE_OPTIMIZERS, ['mmfusion.engine'])
OPTIM_WRAPPERS = _node('optim_wrapper', MMENGINE_OPTIM_WRAPPERS,
                       ['mmfusion.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = _node('optimizer wrapper constructor',
                                   MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
                                   ['mmfusion.engine'])
PARAM_SCHEDULERS = _node('parameter scheduler', MMENGINE_PARAM_SCHEDULERS,
                         ['mmfusion.engine'])

# Metrics and evaluators.
METRICS = _node('metric', MMENGINE_METRICS, ['mmfusion.evaluation'])
EVALUATOR = _node('evaluator', MMENGINE_EVALUATOR, ['mmfusion.evaluation'])

# Visualisation: visualizers and their storage backends.
VISUALIZERS = _node('visualizer', MMENGINE_VISUALIZERS,
                    ['mmfusion.visualization'])
VISBACKENDS = _node('vis_backend', MMENGINE_VISBACKENDS,
                    ['mmfusion.visualization'])

# Log processors, inferencers and plain functions (collate functions).
LOG_PROCESSORS = _node('log_processor', MMENGINE_LOG_PROCESSORS,
                       ['mmfusion.engine'])
INFERENCERS = _node('inferencer', MMENGINE_INFERENCERS, ['mmfusion.apis'])
FUNCTIONS = _node('function', MMENGINE_FUNCTIONS, ['mmfusion.datasets'])
