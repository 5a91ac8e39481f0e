# KITTI monocular 3D detection in MonoDLE's recipe: raw KITTI layout (no info files), train on
# `train`, evaluate on `val` (AP40), random flip 0.5 + random crop 0.5 (scale 0.4, shift 0.1),
# affine warp to 1280 x 384.
dataset_type = 'MonoDLEKittiDataset'
data_root = 'data/KITTI/'
class_names = ['Pedestrian', 'Car', 'Cyclist']
metainfo = dict(classes=class_names)
backend_args = None

input_size = (1280, 384)  # network input (W, H), pixels

train_pipeline = [
    dict(type='LoadKittiMonoImage', backend_args=backend_args),
    dict(type='LoadMonoDLEAnnotations'),
    dict(type='MonoDLEAffineAug', output_size=input_size, random_flip=0.5, random_crop=0.5,
         scale=0.4, shift=0.1),
    # MonoDLE's targets, encoded in the data workers; its bbox_coder is the model's
    # model.bbox_head.bbox_coder (MonoDLERunner copies it in: leave it unset here)
    dict(type='EncodeMonoDLETargets'),
    dict(type='PackMonoDLEInputs'),
]
test_pipeline = [
    dict(type='LoadKittiMonoImage', backend_args=backend_args),
    dict(type='MonoDLEAffineAug', output_size=input_size, test_mode=True),
    dict(type='PackMonoDLEInputs', keys=['img']),
]

# Batch rule (docs/design.md, "Batch and lr"): `total_batch_size` is the total over all
# processes; MonoDLERunner (runner_type in default_runtime.py, used by every train tool)
# replaces batch_size='auto' with total_batch_size // world_size. An integer batch_size
# (e.g. --cfg-options train_dataloader.batch_size=4) is the per-process batch, kept as given.
total_batch_size = 16

# Per process as well, decided where the run starts (MonoDLERunner, any train/test tool;
# monodle_plugin/engine/dataloader_settings.py): num_workers='auto' is, with CUDA, the cores of
# each process's share of the node minus one, at most 4 (train) / 2 (val, test); without CUDA
# 4 / 2. pin_memory='auto' is True exactly when CUDA is available. Integers / bools are kept.
# Validation and test run 4 images per process and step (the same AP as 1 at a time).
train_dataloader = dict(
    batch_size='auto',
    num_workers='auto',
    persistent_workers=True,
    pin_memory='auto',
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        pipeline=train_pipeline,
        metainfo=metainfo,
        test_mode=False,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=4,
    num_workers='auto',
    persistent_workers=True,
    pin_memory='auto',
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='val',
        pipeline=test_pipeline,
        metainfo=metainfo,
        test_mode=True,
        backend_args=backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(type='KittiAP40Metric', data_root=data_root)
test_evaluator = val_evaluator
