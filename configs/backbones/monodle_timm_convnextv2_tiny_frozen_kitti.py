# configs/backbones/monodle_timm_convnextv2_tiny_kitti.py with the backbone frozen through the
# optimizer (TIMMBackbone has no frozen_stages): every parameter under `backbone` gets lr_mult 0
# and no weight decay, so Adam never moves it (MonoDLECosineWarmupLR keeps lr-0 groups at 0;
# ConvNeXt-V2 has no BatchNorm statistics to drift). `bias` keeps MonoDLE's no-decay rule for the
# rest. DLAUp and the head train.
_base_ = ['./monodle_timm_convnextv2_tiny_kitti.py']

optim_wrapper = dict(paramwise_cfg=dict(custom_keys={
    'backbone': dict(lr_mult=0.0, decay_mult=0.0),
    'bias': dict(decay_mult=0.0)}))
