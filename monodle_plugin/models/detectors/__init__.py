from .monodle import MonoDLE

__all__ = ['MonoDLE']
