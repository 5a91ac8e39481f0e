from .coders import MonoDLEBBoxCoder

__all__ = ['MonoDLEBBoxCoder']
