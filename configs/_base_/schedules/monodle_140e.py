# MonoDLE's effective schedule (lib/helpers/{optimizer,scheduler,trainer}_helper.py).
max_epochs = 140
base_lr = 1.25e-3
warmup_epochs = 5

# Adam with coupled (L2) weight decay 1e-5; MonoDLE puts every parameter whose name
# contains 'bias' (conv and BatchNorm biases) in a group without decay: custom_keys
# matches names by substring, exactly like that rule.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=base_lr, weight_decay=1e-5),
    paramwise_cfg=dict(custom_keys={'bias': dict(decay_mult=0.0)}))

# Warm-up: cosine from 1e-5 to base_lr, stepped once per epoch (epoch 0 at 1e-5, epoch 5
# at base_lr). The official decay_list is [90, 120], but its LambdaLR only starts stepping
# after the 5 warm-up epochs, so the x0.1 drops land at (0-indexed) epochs 95 and 125.
param_scheduler = [
    dict(type='MonoDLECosineWarmupLR', warmup_epochs=warmup_epochs, init_value=1e-5,
         begin=0, end=warmup_epochs + 1, by_epoch=True),
    dict(type='MultiStepLR', milestones=[95, 125], gamma=0.1, begin=0, end=max_epochs,
         by_epoch=True),
]

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# The lr above is tuned for a total batch of 16 (e.g. 2 GPUs x 8). mmengine scales it by
# (world_size x per-process batch) / 16: x1 for the recipe's total 16 on any GPU count,
# linear scaling otherwise. `--cfg-options auto_scale_lr.enable=False` keeps the config lr.
auto_scale_lr = dict(enable=True, base_batch_size=16)
