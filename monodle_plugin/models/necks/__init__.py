from .dla_up import DLAUp

__all__ = ['DLAUp']
