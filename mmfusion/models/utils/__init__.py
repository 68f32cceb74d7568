from .spatial_pooling import SpatialPooling

__all__ = ['SpatialPooling']
