# KITTI test-server run of the main recipe (configs/monodle_yolo8_da3.py, YOLOv8n + DA3
# distillation): trained on `trainval` (7481 frames; DA3 maps for all of them:
# generate_da3_depth.py --split trainval), no validation, the same schedule (140 epochs, total
# batch 16, Adam 1.25e-3). `tools/test.py` then runs the `test` split (data/KITTI/testing, 7518
# images, no labels) and only writes the result files, one <id>.txt per image, into
# work_dirs/<config>/<timestamp>/results/test/ (or test_evaluator.submission_prefix):
#   tools/dist_train.sh configs/monodle_yolo8_da3_trainval.py 8
#   python tools/test.py configs/monodle_yolo8_da3_trainval.py CKPT
#   python tools/misc/make_kitti_submission.py work_dirs/.../results/test \
#       --split-file data/KITTI/ImageSets/test.txt --out submission.zip
_base_ = ['./monodle_yolo8_da3.py']

train_dataloader = dict(dataset=dict(split='trainval'))
# no validation: trainval holds every labelled frame
val_dataloader = None
val_evaluator = None
val_cfg = None
test_dataloader = dict(dataset=dict(split='test'))
test_evaluator = dict(format_only=True)
