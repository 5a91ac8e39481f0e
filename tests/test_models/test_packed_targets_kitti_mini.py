"""Targets encoded in the data pipeline (``EncodeMonoDLETargets``, packed with the batch) train
bit for bit as targets encoded inside the head: two training steps of the YOLOv8 + DA3 demo
config on real kitti_mini frames (random flip and crop on, LiDAR depth as teacher), same
frames and augmentation draws, compared loss by loss, gradient by gradient and parameter by
parameter."""
import copy
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
MINI = ROOT / 'demo' / 'kitti_mini' / 'KITTI'
CONFIG = ROOT / 'configs' / 'demo' / 'monodle_yolo8_da3_kitti_mini.py'
FRAMES = ((0, 3), (6, 10))  # two steps of two frames
SEEDS = ((11, 12), (13, 14))  # numpy seed of each frame's augmentation draws


def batches(cfg, pipeline):
    from mmdet3d.registry import DATASETS
    from mmengine.dataset import default_collate
    dataset = DATASETS.build(dict(cfg.train_dataloader.dataset, data_root=str(MINI),
                                  pipeline=pipeline))
    out = []
    for frames, seeds in zip(FRAMES, SEEDS):
        items = []
        for frame, seed in zip(frames, seeds):
            np.random.seed(seed)
            items.append(dataset.prepare_data(frame))
        out.append(default_collate(items))
    return out


def train(model, cfg, data):
    from mmengine.optim import build_optim_wrapper
    model.train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    steps = []
    for batch in data:
        inputs = model.data_preprocessor(batch, True)
        losses = model(**inputs, mode='loss')
        loss, _ = model.parse_losses(losses)
        optim_wrapper.backward(loss)
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        optim_wrapper.step()
        optim_wrapper.zero_grad()
        steps.append(({k: v.detach() for k, v in losses.items()}, grads))
    return steps, model.state_dict()


def test_packed_targets_train_bit_identically_to_encoding_in_the_head():
    from mmdet3d.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from monodle_plugin.datasets.transforms.encode_monodle_targets import fill_target_coders
    init_default_scope('mmdet3d')
    from monodle_plugin.utils.distill_switches import apply_distill_switches
    cfg = Config.fromfile(str(CONFIG))
    apply_distill_switches(cfg)  # LoadDA3Depth + loss_depth_distill, as MonoDLERunner does
    assert fill_target_coders(cfg)  # the demo's EncodeMonoDLETargets gets the head's coder
    pipeline = cfg.train_dataloader.dataset.pipeline
    for step in pipeline:
        if step['type'] == 'MonoDLEAffineAug':
            step.update(output_size=(320, 96), random_flip=0.5, random_crop=0.5)
    assert [s['type'] for s in pipeline][-2:] == ['EncodeMonoDLETargets', 'PackMonoDLEInputs']
    packed = batches(cfg, pipeline)
    in_head = batches(cfg, [s for s in pipeline if s['type'] != 'EncodeMonoDLETargets'])
    samples = [ds for batch in packed for ds in batch['data_samples']]
    assert all('monodle_targets' in ds for ds in samples)
    assert not any('monodle_targets' in ds for b in in_head for ds in b['data_samples'])
    # the draws exercise both augmentations (a crop masks the 3D targets)
    assert any(ds.flip for ds in samples) and any(ds.random_crop for ds in samples)
    assert any(ds.monodle_targets.mask_2d.any() for ds in samples)

    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    twin = copy.deepcopy(model)
    got_steps, got_state = train(model, cfg, packed)
    ref_steps, ref_state = train(twin, cfg, in_head)
    for (got_l, got_g), (ref_l, ref_g) in zip(got_steps, ref_steps):
        assert set(got_l) == set(ref_l) and 'loss_depth_distill' in got_l
        for key in ref_l:
            assert torch.equal(got_l[key], ref_l[key]), key
        assert set(got_g) == set(ref_g)
        for name in ref_g:
            assert torch.equal(got_g[name], ref_g[name]), name
    for name in ref_state:
        assert torch.equal(got_state[name], ref_state[name]), name
