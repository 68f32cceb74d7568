from .small_cnn import SmallCNN, append_coords, coord_channels

__all__ = ['SmallCNN', 'append_coords', 'coord_channels']
