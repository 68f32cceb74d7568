from .multimodal_data_preprocessor import MultimodalDataPreprocessor

__all__ = ['MultimodalDataPreprocessor']
