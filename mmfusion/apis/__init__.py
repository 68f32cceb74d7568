"""High-level APIs: inference, runner configs, sweeps."""
from .inferencer import MultimodalInferencer, load_inference_config
from .predictions import (jsonable, register_prediction_converter,
                          sample_to_prediction)

__all__ = [
    'MultimodalInferencer', 'jsonable', 'load_inference_config',
    'register_prediction_converter', 'sample_to_prediction'
]
