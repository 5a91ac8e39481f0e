# Ablation: MonoDLE + YOLOv8n + uncertainty-guided DA3 distillation (the seed's
# `use_distill_uncertainty` / `distill.use_uncertainty`, commit ca005eb): the head's dense
# log-variance branch and Kendall's heteroscedastic distillation loss. Otherwise identical to
# configs/ablation/monodle_yolo8_da3_kitti.py.
_base_ = ['./monodle_yolo8_da3_kitti.py']

distill = dict(use_uncertainty=True)
model = dict(bbox_head=dict(
    use_distill_uncertainty=True,
    loss_depth_distill=dict(_delete_=True, type='UncertaintyDepthDistillLoss', loss_weight=0.5,
                            foreground='heatmap', foreground_weight=5.0)))
