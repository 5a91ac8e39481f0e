# MonoDLE + YOLOv8n backbone + dense depth distillation from Depth Anything 3 (the main recipe):
#
#   python tools/dataset_converters/generate_da3_depth.py data/KITTI --split trainval \
#       --model <DA3METRIC-LARGE dir>
#   python tools/misc/check_depth_labels.py data/KITTI --depth-dir DA3_depth_results --split train
#   tools/dist_train.sh configs/monodle_yolo8_da3.py 8
#
# Data: data/KITTI (raw layout: ImageSets, training/{image_2,calib,label_2}) and
# data/KITTI/DA3_depth_results/<id>.npz. Total batch 16 over all GPUs (8 GPUs: 2 each, set by
# MonoDLERunner under any train tool), Adam 1.25e-3, 140 epochs, KITTI val AP40.
# Distillation: L_total = L_base + lambda * L_distill with the switches of
# configs/_base_/distill/da3_distill.py (lambda 0.5, L1, soft foreground weight 5); lambda 0 or
# use_da3_depth=False gives exactly configs/ablation/monodle_yolo8_kitti.py.
_base_ = ['./ablation/monodle_yolo8_kitti.py', './_base_/distill/da3_distill.py']

train_dataloader = dict(dataset=dict(pipeline=_base_.da3_train_pipeline))
model = dict(bbox_head=dict(loss_depth_distill=_base_.da3_loss_depth_distill))
