# The official DLA-34 recipe (configs/monodle/monodle_dla34_kitti.py) trained on the three KITTI
# classes: Pedestrian, Car and Cyclist get targets. The official code trains Car only
# (experiments/example/kitti_example.yaml: `writelist: ['Car']` with `num_class: 3`, the three
# heatmap channels always present); this config widens the writelist, nothing else changes
# (Van / Truck / DontCare stay without targets, as in the official writelist). Evaluation
# already reports every class: per-class AP40 rows in the printed table and per-class keys
# (`KITTI/Pedestrian_3D_AP40_moderate_strict`, `KITTI/Cyclist_...`, `KITTI/Overall_...`).
_base_ = ['./monodle_dla34_kitti.py']

model = dict(bbox_head=dict(bbox_coder=dict(writelist=['Pedestrian', 'Car', 'Cyclist'])))
