from .modality_features import ModalityFeatures
from .multimodal_data_sample import MultimodalDataSample

__all__ = ['ModalityFeatures', 'MultimodalDataSample']
