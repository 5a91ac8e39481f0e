from .monodle_runner import MonoDLERunner

__all__ = ['MonoDLERunner']
