_base_ = ['./monodle_yolo8_da3.py']

train_dataloader = dict(dataset=dict(split='trainval'))
# no validation: trainval holds every labelled frame
val_dataloader = None
val_evaluator = None
val_cfg = None
test_dataloader = dict(dataset=dict(split='test'))
test_evaluator = dict(format_only=True)
