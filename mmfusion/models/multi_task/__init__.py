"""Multi-task models: one shared trunk, several task heads.

The model subclasses mmseg's segmentor, so its module is imported on first
use (by the registry, or by ``from mmfusion.models.multi_task import ...``).
"""
from mmfusion.registry import lazy_exports

__all__ = ['MultiTaskModel']

__getattr__ = lazy_exports(__name__, __all__)
