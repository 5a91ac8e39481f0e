# MonoDLE (DLA-34) + dense depth distillation from Depth Anything 3: the seed system's
# `monodle/kitti_da3.yaml` (its DDP and `-e` examples; KITTI val Car 3D AP40 moderate 14.26 in
# its README). Switches: configs/_base_/distill/da3_distill.py (lambda 0.5, L1, soft foreground
# weight 5); `--cfg-options distill.lambda=0` gives exactly configs/monodle/monodle_dla34_kitti.py.
#   tools/dist_train.sh configs/monodle/monodle_dla34_da3_kitti.py 8
_base_ = ['./monodle_dla34_kitti.py', '../_base_/distill/da3_distill.py']

train_dataloader = dict(dataset=dict(pipeline=_base_.da3_train_pipeline))
model = dict(bbox_head=dict(loss_depth_distill=_base_.da3_loss_depth_distill))
