# MonoDLE with a timm backbone (mmpretrain.TIMMBackbone) under DLAUp + CenterNet3D. A config on
# this base sets custom_imports (+ mmpretrain.models), model_name, the local weight file and the
# channels: configs/backbones/README.md.
_base_ = ['./monodle_dla34.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.TIMMBackbone',
        features_only=True,
        out_indices=(0, 1, 2, 3),
        pretrained=True),
    neck=dict(strides=[4, 8, 16, 32]))
