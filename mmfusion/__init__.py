"""mmfusion: config-driven multimodal (text + image) training on OpenMMLab."""
from .version import __version__

__all__ = ['__version__']
