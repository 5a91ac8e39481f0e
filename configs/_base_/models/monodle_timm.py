# MonoDLE with a timm backbone through mmpretrain.TIMMBackbone (EXTRAS=backbones) under DLAUp +
# CenterNet3D (configs/_base_/models/monodle_dla34.py with its backbone replaced; ImageNet mean /
# std input). A config on this base sets custom_imports (monodle_plugin + mmpretrain.models; the
# key is default_runtime.py's, so a model base cannot set it too), `model_name`, the local weight
# file (`pretrained_cfg_overlay=dict(file=...)`) and the channels of timm's features_only maps at
# strides 4/8/16/32 into neck.in_channels and bbox_head.in_channels (the first one).
# Weights come from a local file only, loaded by timm itself; a missing file stops the build
# saying so; `--cfg-options model.backbone.pretrained=False` trains from random weights
# (pretrained=True without a local file, i.e. a hub download, is refused).
_base_ = ['./monodle_dla34.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.TIMMBackbone',
        features_only=True,
        out_indices=(0, 1, 2, 3),
        pretrained=True),
    neck=dict(strides=[4, 8, 16, 32]))
