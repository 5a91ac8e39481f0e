# MonoDLE (DLA-34) + uncertainty-guided DA3 distillation: the seed system's
# `monodle/kitti_da3_uncertainty.yaml` (commit ca005eb; KITTI val Car 3D AP40 moderate 14.48 in
# its README). The head predicts a dense log-variance (`use_distill_uncertainty`, the seed's
# `model.use_distill_uncertainty`) and the distillation loss is Kendall's heteroscedastic one
# (UncertaintyDepthDistillLoss, `distill.use_uncertainty`); see docs/distillation.md section 4.
_base_ = ['./monodle_dla34_da3_kitti.py']

distill = dict(use_uncertainty=True)
model = dict(bbox_head=dict(
    use_distill_uncertainty=True,
    loss_depth_distill=dict(_delete_=True, type='UncertaintyDepthDistillLoss', loss_weight=0.5,
                            foreground='heatmap', foreground_weight=5.0)))
