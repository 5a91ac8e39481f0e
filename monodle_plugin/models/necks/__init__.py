from .dla_up import DLAUp
from .native_neck import NativeNeck

__all__ = ['DLAUp', 'NativeNeck']
