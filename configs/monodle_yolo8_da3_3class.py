# The main recipe (configs/monodle_yolo8_da3.py, YOLOv8n + DA3 distillation) trained on the
# three KITTI classes: Pedestrian, Car and Cyclist get targets (the recipe, like the official
# MonoDLE, trains Car only: `writelist=['Car']` with three heatmap channels). Only the writelist
# changes. Evaluation reports every class: per-class AP40 rows in the printed table and
# per-class keys (`KITTI/Pedestrian_3D_AP40_moderate_strict`, `KITTI/Cyclist_...`,
# `KITTI/Overall_...`).
_base_ = ['./monodle_yolo8_da3.py']

model = dict(bbox_head=dict(bbox_coder=dict(writelist=['Pedestrian', 'Car', 'Cyclist'])))
