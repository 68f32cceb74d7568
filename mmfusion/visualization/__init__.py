"""Visualisers: pictures of samples, predictions and attention."""
from .attention import (attention_grid, attention_heatmap, grid_to_image,
                        normalize_heatmap, overlay_heatmap, peak_position)
from .multimodal_visualizer import MultimodalVisualizer, class_name

__all__ = [
    'MultimodalVisualizer', 'attention_grid', 'attention_heatmap',
    'class_name', 'grid_to_image', 'normalize_heatmap', 'overlay_heatmap',
    'peak_position'
]
