# The official MonoDLE recipe (xinzhuma/monodle, experiments/example/kitti_example.yaml):
# DLA-34 + DLAUp + CenterNet3D head, KITTI train -> val, 1280 x 384, flip 0.5 / crop 0.5
# (scale 0.4, shift 0.1), Adam 1.25e-3, 140 epochs, total batch 16, AP40 (paper Car val
# 17.45 / 13.66 / 11.68). Official checkpoints: tools/convert_monodle_checkpoint.py.
_base_ = [
    '../_base_/models/monodle_dla34.py',
    '../_base_/datasets/kitti_mono3d_monodle.py',
    '../_base_/schedules/monodle_140e.py',
    '../_base_/default_runtime.py',
]

# MonoDLE starts DLA-34 from ImageNet weights (official dla34(pretrained=True)). Nothing is
# downloaded here: fetch dla34-ba72cf86.pth (dl.yf.io/dla/models/imagenet) yourself, convert it
#   python tools/convert_monodle_checkpoint.py --imagenet-dla34 dla34-ba72cf86.pth \
#       checkpoints/dla34_imagenet_mmdet3d.pth
# and training finds it here (a missing file stops training at start-up, saying this).
# `--cfg-options model.backbone.init_cfg=None` trains from scratch (not the official recipe).
dla34_imagenet = 'checkpoints/dla34_imagenet_mmdet3d.pth'
model = dict(backbone=dict(
    init_cfg=dict(_delete_=True, type='Pretrained', checkpoint=dla34_imagenet)))
