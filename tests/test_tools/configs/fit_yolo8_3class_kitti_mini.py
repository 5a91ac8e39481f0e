# Three-class fit-test config (tests/test_tools/test_fit_kitti_mini.py): the Car fit test's
# recipe (fit_yolo8_kitti_mini.py: main recipe, 320 x 96, 64-channel head, 400 iterations) with
# the writelist of configs/monodle_yolo8_da3_3class.py, on the 2 kitti_mini frames with
# official labels: 000000 (1 pedestrian) and 000076 (8 pedestrians, 1 cyclist, 1 DontCare).
_base_ = ['./fit_yolo8_kitti_mini.py']

frames = [0, 11]  # 000000, 000076 of ImageSets/train.txt
train_dataloader = dict(dataset=dict(indices=frames))
val_dataloader = dict(dataset=dict(indices=frames))
test_dataloader = val_dataloader
model = dict(bbox_head=dict(bbox_coder=dict(writelist=['Pedestrian', 'Car', 'Cyclist'])))
