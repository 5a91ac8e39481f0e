"""tools/train.py --amp: AmpOptimWrapper (fp16 + loss scaling) on CUDA, BF16OptimWrapper
(bf16 autocast, no scaling) on CPU; a CPU bf16 training step of the main recipe on kitti_mini
gives finite losses close to the float32 step's."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from monodle_plugin.engine.optim_wrappers import apply_amp

ROOT = Path(__file__).resolve().parents[2]
MAIN = str(ROOT / 'configs' / 'monodle_yolo8_da3.py')
MINI = str(ROOT / 'demo' / 'kitti_mini' / 'KITTI')
#: |loss_bf16 - loss_fp32| <= RTOL * |loss_fp32| + ATOL per loss term, same weights and batch.
#: bfloat16 keeps 8 mantissa bits (relative step 2^-8 = 0.4 %). Measured on this test's batch
#: (freshly initialised weights, whose head outputs are near their biases): at most 0.18 %
#: (loss_heatmap), the others below 0.01 %; the tolerance leaves 10x for other CPUs / kernels.
RTOL, ATOL = 0.02, 1e-3


def test_apply_amp_per_device():
    cfg = Config.fromfile(MAIN)
    assert 'float16' in apply_amp(cfg, cuda=True)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.dtype == 'float16' and cfg.optim_wrapper.loss_scale == 'dynamic'
    assert cfg.optim_wrapper.optimizer.type == 'Adam'  # the rest of the wrapper is kept
    cfg = Config.fromfile(MAIN)
    apply_amp(cfg, cuda=False)
    assert cfg.optim_wrapper.type == 'BF16OptimWrapper' and 'loss_scale' not in cfg.optim_wrapper
    assert apply_amp(cfg, cuda=False) == 'BF16OptimWrapper from the config'  # kept
    cfg.optim_wrapper.type = 'ApexOptimWrapper'
    with pytest.raises(ValueError, match='--amp needs optim_wrapper.type OptimWrapper'):
        apply_amp(cfg)


def test_train_tool_amp_on_this_machine():
    import sys
    sys.path.insert(0, str(ROOT / 'tests' / 'test_tools'))
    from tool_helpers import load_tool
    tool = load_tool('train')
    cfg = tool.build_cfg(tool.parse_args([MAIN, '--amp']))
    expected = 'AmpOptimWrapper' if torch.cuda.is_available() else 'BF16OptimWrapper'
    assert cfg.optim_wrapper.type == expected


def _model_and_batch():
    from mmdet3d.registry import DATASETS, MODELS
    from mmengine.dataset import default_collate
    from mmengine.registry import init_default_scope

    from monodle_plugin.utils.distill_switches import apply_distill_switches
    init_default_scope('mmdet3d')
    cfg = Config.fromfile(MAIN)
    cfg.merge_from_dict({'distill.depth_dir': 'lidar_depth'})  # kitti_mini's DA3 stand-in
    apply_distill_switches(cfg)
    pipeline = cfg.train_dataloader.dataset.pipeline
    pipeline[2].update(output_size=(320, 96), random_flip=0.0, random_crop=0.0)
    dataset = DATASETS.build(dict(cfg.train_dataloader.dataset, data_root=MINI, indices=[6, 11],
                                  pipeline=pipeline))  # 000008 (10 cars), 000076 (9 people)
    torch.manual_seed(0)
    cfg.model.backbone.pretrained = False
    cfg.model.bbox_head.feat_channels = 64
    model = MODELS.build(cfg.model)
    model.train()
    batch = default_collate([dataset[0], dataset[1]])
    return cfg, model, batch


def test_cpu_bf16_step_is_finite_and_close_to_float32():
    from mmengine.optim import build_optim_wrapper
    cfg, model, batch = _model_and_batch()
    apply_amp(cfg, cuda=False)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    assert type(wrapper).__name__ == 'BF16OptimWrapper'
    data = model.data_preprocessor(batch, True)

    with torch.no_grad():
        ref = model(**data, mode='loss')
    seen = {}

    def record(module, inputs, output):
        seen['dtype'] = output.dtype

    hook = model.bbox_head.heatmap[0].register_forward_hook(record)
    with wrapper.optim_context(model):
        losses = model(**data, mode='loss')
    hook.remove()
    assert seen['dtype'] == torch.bfloat16  # the convolutions ran in bf16
    assert set(losses) == set(ref) and 'loss_depth_distill' in losses
    for key, value in losses.items():
        assert value.dtype == torch.float32, key  # the losses ran in float32 (not bf16)
        value, expected = value.detach().item(), ref[key].item()
        assert torch.isfinite(torch.tensor(value)), key
        assert abs(value - expected) <= RTOL * abs(expected) + ATOL, (key, value, expected)

    # one optimiser step through the wrapper: float32 weights, finite, changed
    total, _ = model.parse_losses(losses)
    before = model.bbox_head.heatmap[2].weight.detach().clone()
    wrapper.update_params(total)
    after = model.bbox_head.heatmap[2].weight
    assert after.dtype == torch.float32 and torch.isfinite(after).all()
    assert not torch.equal(before, after)
    with wrapper.optim_context(model):
        again = model(**data, mode='loss')
    assert all(torch.isfinite(v).all() for v in again.values())
