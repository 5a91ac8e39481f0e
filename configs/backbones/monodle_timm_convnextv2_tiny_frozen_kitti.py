# configs/backbones/monodle_timm_convnextv2_tiny_kitti.py with the backbone frozen (TIMMBackbone
# has no frozen_stages): the detector's freeze_backbone=True sets requires_grad=False on every
# backbone parameter, so no backbone gradient is computed or all-reduced across GPUs (and would
# keep BatchNorm statistics fixed; ConvNeXt-V2 has none). DLAUp and the head train.
_base_ = ['./monodle_timm_convnextv2_tiny_kitti.py']

model = dict(freeze_backbone=True)
