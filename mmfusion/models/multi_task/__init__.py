"""Multi-task models: one shared trunk, several task heads."""
from .multi_task_model import MultiTaskModel

__all__ = ['MultiTaskModel']
