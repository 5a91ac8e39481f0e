from .cornernet_focal_loss import CornerNetFocalLoss
from .depth_distill_loss import DepthDistillLoss
from .dim_aware_l1_loss import DimAwareL1Loss
from .laplacian_aleatoric_depth_loss import LaplacianAleatoricDepthLoss
from .multibin_heading_loss import MultiBinHeadingLoss
from .uncertainty_depth_distill_loss import UncertaintyDepthDistillLoss

__all__ = [
    'CornerNetFocalLoss', 'DepthDistillLoss', 'DimAwareL1Loss', 'LaplacianAleatoricDepthLoss',
    'MultiBinHeadingLoss', 'UncertaintyDepthDistillLoss'
]
