# MonoDLE + YOLOv8n backbone + dense depth distillation from Depth Anything 3 (the main recipe):
#
#   python tools/generate_da3_depth.py data/KITTI --split trainval --model <DA3METRIC-LARGE dir>
#   python tools/check_depth_labels.py data/KITTI --depth-dir DA3_depth_results --split train
#   tools/dist_train.sh configs/monodle_yolo8_da3.py 8
#
# Data: data/KITTI (raw layout: ImageSets, training/{image_2,calib,label_2}) and
# data/KITTI/DA3_depth_results/<id>.npz. Total batch 16 over all GPUs (8 GPUs: 2 each, set by
# tools/train.py), Adam 1.25e-3, 140 epochs, KITTI val AP40.
# Distillation: L_total = L_base + lambda * L_distill with the switches below (defaults and
# their meaning: configs/_base_/distill/da3_distill.py); lambda 0 or use_da3_depth = False
# gives exactly configs/ablation/monodle_yolo8_kitti.py.
_base_ = ['./ablation/monodle_yolo8_kitti.py', './_base_/distill/da3_distill.py']

from monodle_plugin.utils.da3_distill_wiring import da3_distill_wiring

use_da3_depth = True
distill = dict(_base_.distill)
distill.update(lambda_=0.5, loss_type='l1', foreground_weight=5.0)

# ---- wiring: the switches above become the pipeline step, the head loss and the hook ----
if use_da3_depth and distill['lambda_'] > 0:
    train_dataloader, model, custom_hooks = da3_distill_wiring(
        distill, _base_.train_dataloader.dataset.pipeline, _base_.get('custom_hooks', []))
