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

use_da3_depth = True
distill = dict(_base_.distill)
distill.update(lambda_=0.5, loss_type='l1', foreground_weight=5.0)

# ---- wiring: the same block in every DA3 config (see configs/_base_/distill/da3_distill.py) ----
if use_da3_depth and distill['lambda_'] > 0:
    train_pipeline = []
    for _step in _base_.train_dataloader.dataset.pipeline:
        train_pipeline.append(_step)
        if _step['type'] == 'MonoDLEAffineAug':
            train_pipeline.append(
                dict(type='LoadDA3Depth', depth_dir=distill['depth_dir'],
                     max_depth=distill['max_depth'], on_missing=distill['on_missing']))
    del _step
    train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
    model = dict(bbox_head=dict(loss_depth_distill=dict(
        _delete_=True, type='DepthDistillLoss', loss_weight=distill['lambda_'],
        loss_type=distill['loss_type'], foreground=distill['foreground'],
        foreground_weight=distill['foreground_weight'],
        variance_factor=distill['silog_variance_factor'],
        silog_weighted=distill['silog_weighted'])))
    custom_hooks = list(_base_.get('custom_hooks', [])) + [
        dict(type='DistillWeightHook', warmup_iters=distill['warmup_iters'],
             off_after_epoch=distill['off_after_epoch'])]
