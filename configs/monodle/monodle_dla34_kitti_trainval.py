# KITTI test-server run of the official DLA-34 recipe (configs/monodle/monodle_dla34_kitti.py):
# trained on `trainval` (7481 frames), no validation, the same schedule (140 epochs, total batch
# 16, Adam 1.25e-3). `tools/test.py` then runs the `test` split (data/KITTI/testing, 7518 images,
# no labels) and only writes the result files, one <id>.txt per image, into
# work_dirs/<config>/<timestamp>/results/test/ (or test_evaluator.submission_prefix):
#   tools/dist_train.sh configs/monodle/monodle_dla34_kitti_trainval.py 8
#   python tools/test.py configs/monodle/monodle_dla34_kitti_trainval.py CKPT
#   python tools/misc/make_kitti_submission.py work_dirs/.../results/test \
#       --split-file data/KITTI/ImageSets/test.txt --out submission.zip
_base_ = ['./monodle_dla34_kitti.py']

train_dataloader = dict(dataset=dict(split='trainval'))
# no validation: trainval holds every labelled frame
val_dataloader = None
val_evaluator = None
val_cfg = None
test_dataloader = dict(dataset=dict(split='test'))
test_evaluator = dict(format_only=True)
