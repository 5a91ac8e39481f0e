# Ablation: MonoDLE + YOLO11n backbone + dense depth distillation from DA3 pseudo-labels
# (configs/_base_/distill/da3_distill.py: lambda 0.5, L1, soft foreground weight 5).
# Otherwise identical to configs/ablation/monodle_yolo11_kitti.py.
_base_ = ['./monodle_yolo11_kitti.py', '../_base_/distill/da3_distill.py']

from monodle_plugin.utils.da3_distill_wiring import da3_distill_wiring

use_da3_depth = True
distill = dict(_base_.distill)  # change a switch here, e.g. distill['loss_type'] = 'silog'

# ---- wiring: the switches above become the pipeline step, the head loss and the hook ----
if use_da3_depth and distill['lambda_'] > 0:
    train_dataloader, model, custom_hooks = da3_distill_wiring(
        distill, _base_.train_dataloader.dataset.pipeline, _base_.get('custom_hooks', []))
