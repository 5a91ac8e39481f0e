# Runtime shared by every monodle_plugin config.
default_scope = 'mmdet3d'
custom_imports = dict(imports=['monodle_plugin'], allow_failed_imports=False)
# mmengine's Runner + the batch rule, the distillation switches and the start-up log
# (monodle_plugin/engine/runners/monodle_runner.py); every train/test tool builds it, ours and
# mmdet3d's stock tools/train.py alike (they call RUNNERS.build(cfg) when runner_type is set)
runner_type = 'MonoDLERunner'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # mmengine's CheckpointHook + atomic saving, random states, files in the run folder
    checkpoint=dict(type='ResumableCheckpointHook', interval=10, by_epoch=True,
                    max_keep_ckpts=-1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='Det3DVisualizationHook'),
    # params and GMACs logged once before training (input size: the pipeline's output_size)
    complexity=dict(type='ModelComplexityHook'))

env_cfg = dict(
    # the input size is fixed (affine warp to the pipeline's output_size): cuDNN picks the
    # fastest convolution algorithms once (no effect on CPU runs; randomness.deterministic=True
    # switches it off again, see docs/en/training_testing.md, "GPU vs CPU numbers")
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # nccl on GPUs; MonoDLERunner switches to gloo when CUDA is not available
    dist_cfg=dict(backend='nccl'))

# MonoDLE's official seed (experiments/example/kitti_example.yaml: random_seed 444)
randomness = dict(seed=444, deterministic=False, diff_rank_seed=False)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='Det3DLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
