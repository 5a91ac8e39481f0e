# Three-class fit-test config (tests/test_tools/test_fit_3class_kitti_mini.py): the Car fit
# test's recipe (fit_yolo8_kitti_mini.py: main recipe, 320 x 96, 64-channel head, 400
# iterations) with the writelist of configs/monodle_yolo8_da3_3class.py. No kitti_mini frame
# holds both pedestrians and cars, so the 2 frames are 000008 (10 cars, pseudo ground truth)
# and 000076 (official labels: 8 pedestrians, 1 cyclist, 1 DontCare).
_base_ = ['./fit_yolo8_kitti_mini.py']

frames = [6, 11]  # 000008, 000076 of ImageSets/train.txt
train_dataloader = dict(dataset=dict(indices=frames))
val_dataloader = dict(dataset=dict(indices=frames))
test_dataloader = val_dataloader
model = dict(bbox_head=dict(bbox_coder=dict(writelist=['Pedestrian', 'Car', 'Cyclist'])))
