from .text_conditioned_detector import TextConditionedDetector

__all__ = ['TextConditionedDetector']
