"""Segmentors: mmseg's encoder-decoder with text-conditioned features."""
from .text_conditioned_segmentor import TextConditionedSegmentor

__all__ = ['TextConditionedSegmentor']
