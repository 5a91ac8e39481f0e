# Ablation: MonoDLE + YOLOv8n backbone + dense depth distillation from DA3 pseudo-labels
# (configs/_base_/distill/da3_distill.py: lambda 0.5, L1, soft foreground weight 5).
# Otherwise identical to configs/ablation/monodle_yolo8_kitti.py. Change a switch with
# --cfg-options (e.g. distill.loss_type=silog) or in a config inheriting this one
# (distill = dict(loss_type='silog')).
_base_ = ['./monodle_yolo8_kitti.py', '../_base_/distill/da3_distill.py']

train_dataloader = dict(dataset=dict(pipeline=_base_.da3_train_pipeline))
model = dict(bbox_head=dict(loss_depth_distill=_base_.da3_loss_depth_distill))
