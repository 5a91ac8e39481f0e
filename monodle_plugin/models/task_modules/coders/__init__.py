from .monodle_bbox_coder import MonoDLEBBoxCoder

__all__ = ['MonoDLEBBoxCoder']
