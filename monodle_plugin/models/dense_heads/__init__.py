from .centernet3d_head import CenterNet3DHead

__all__ = ['CenterNet3DHead']
