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

total_batch_size = 16
auto_scale_lr = dict(enable=False, base_batch_size=16)
