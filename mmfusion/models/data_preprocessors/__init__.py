from .multimodal_data_preprocessor import MultimodalDataPreprocessor
from .multimodal_det_data_preprocessor import MultimodalDetDataPreprocessor

__all__ = ['MultimodalDataPreprocessor', 'MultimodalDetDataPreprocessor']

# Referring segmentation.
from .multimodal_seg_data_preprocessor import \
    MultimodalSegDataPreprocessor  # noqa: E402

__all__ += ['MultimodalSegDataPreprocessor']
