"""Data transforms (registered in mmdet3d's ``TRANSFORMS``)."""
from .encode_monodle_targets import EncodeMonoDLETargets
from .formatting import PackMonoDLEInputs
from .load_da3_depth import LoadDA3Depth
from .loading import LoadKittiMonoImage, LoadMonoDLEAnnotations
from .monodle_affine_aug import MonoDLEAffineAug

__all__ = [
    'EncodeMonoDLETargets', 'LoadDA3Depth', 'LoadKittiMonoImage', 'LoadMonoDLEAnnotations',
    'MonoDLEAffineAug', 'PackMonoDLEInputs'
]
