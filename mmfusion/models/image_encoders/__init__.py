from .small_cnn import SmallCNN, append_coords, coord_channels, coord_conv2d

__all__ = ['SmallCNN', 'append_coords', 'coord_channels', 'coord_conv2d']
