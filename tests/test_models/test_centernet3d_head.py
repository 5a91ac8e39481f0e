"""CenterNet3DHead: MonoDLE targets, losses, decoding, degenerate inputs, fused branches, DDP.

References are independent of the code under test: targets of hand-built objects are
written out by hand (peak, offsets, bins), the Gaussian and losses are recomputed in numpy
from the formulas of the MonoDLE paper / code.
"""
import math
import os

import numpy as np
import pytest
import torch
from mmdet3d.registry import MODELS
from mmdet3d.structures import CameraInstance3DBoxes, Det3DDataSample
from mmengine.structures import InstanceData

import monodle_plugin  # noqa: F401  (registers)

IMG_H, IMG_W = 64, 128  # network input; output grid 16 x 32
FH, FW = IMG_H // 4, IMG_W // 4
P2 = np.array([[700.0, 0, 60.0, 40.0], [0, 700.0, 30.0, 0.5], [0, 0, 1, 0.003], [0, 0, 0, 1]])


CODER_KEYS = ('writelist', 'use_mean_size', 'use_3d_center')


def make_head(**kwargs):
    """The head with small branches; coder arguments (``writelist``...) go to its bbox_coder."""
    coder = {k: kwargs.pop(k) for k in CODER_KEYS if k in kwargs}
    cfg = dict(type='CenterNet3DHead', in_channels=8, feat_channels=16,
               bbox_coder=dict(type='MonoDLEBBoxCoder', **coder))
    cfg.update(kwargs)
    return MODELS.build(cfg)


def obj(label=1, bbox=(20, 12, 52, 36), center=(41.0, 30.6), depth=10.0, alpha=1.0,
        lhw=(3.9, 1.5, 1.6), difficulty=1, name=None):
    return dict(label=label, bbox=bbox, center=center, depth=depth, alpha=alpha, lhw=lhw,
                difficulty=difficulty, name=name)


def make_sample(objs, crop_scale=1.0, random_crop=False, names=False):
    n = len(objs)
    ds = Det3DDataSample()
    g3 = InstanceData()
    boxes = np.zeros((n, 7), np.float32)
    for i, o in enumerate(objs):
        boxes[i] = [0.5, 1.5, o['depth'], *o['lhw'], 0.2]
    g3.bboxes_3d = CameraInstance3DBoxes(torch.from_numpy(boxes))
    g3.labels_3d = torch.tensor([o['label'] for o in objs], dtype=torch.long)
    g3.centers_2d = torch.tensor([o['center'] for o in objs], dtype=torch.float32).view(n, 2)
    g3.depths = torch.tensor([o['depth'] for o in objs], dtype=torch.float32)
    g3.alphas = torch.tensor([o['alpha'] for o in objs], dtype=torch.float32)
    g3.difficulty = torch.tensor([o['difficulty'] for o in objs], dtype=torch.long)
    if names:
        g3.names = [o['name'] for o in objs]
    g2 = InstanceData()
    g2.bboxes = torch.tensor([o['bbox'] for o in objs], dtype=torch.float32).view(n, 4)
    g2.labels = g3.labels_3d.clone()
    ds.gt_instances_3d = g3
    ds.gt_instances = g2
    ds.set_metainfo(dict(img_shape=(IMG_H, IMG_W), ori_shape=(IMG_H, IMG_W), cam2img=P2.tolist(),
                         crop_scale=crop_scale, random_crop=random_crop))
    return ds


def np_radius(w, h, o=0.7):
    """CenterNet's radius formula (the one MonoDLE uses), written out independently."""
    roots = []
    for a, b, c in ((1, h + w, w * h * (1 - o) / (1 + o)), (4, 2 * (h + w), (1 - o) * w * h),
                    (4 * o, -2 * o * (h + w), (o - 1) * w * h)):
        roots.append((b + math.sqrt(b * b - 4 * a * c)) / 2)
    return min(roots)


# ----------------------------------------------------------------------------- targets
def test_targets_of_one_hand_built_car():
    head = make_head()
    ds = make_sample([obj()], crop_scale=1.2)
    t = head.get_targets([ds.gt_instances_3d], [ds.gt_instances], [ds.metainfo], (FH, FW))
    # box /4 = [5, 3, 13, 9] -> 2D centre (9, 6), size (8, 6); 3D centre /4 = (10.25, 7.65)
    assert t['mask_2d'][0].tolist() == [True] + [False] * 49
    assert t['mask_3d'][0, 0]
    assert t['indices'][0, 0].item() == 7 * FW + 10
    np.testing.assert_allclose(t['offset_2d'][0, 0].numpy(), [-1.0, -1.0], atol=1e-6)
    np.testing.assert_allclose(t['offset_3d'][0, 0].numpy(), [0.25, 0.65], atol=1e-5)
    np.testing.assert_allclose(t['size_2d'][0, 0].numpy(), [8.0, 6.0])
    np.testing.assert_allclose(t['depth'][0, 0].numpy(), [12.0], rtol=1e-6)  # x crop scale
    # alpha 1.0 rad: 30 deg bins centred on 0 -> bin 2 (centre 60 deg), residual 1 - pi/3
    assert t['heading_bin'][0, 0].item() == 2
    np.testing.assert_allclose(t['heading_res'][0, 0].item(), 1.0 - math.pi / 3, atol=1e-6)
    np.testing.assert_allclose(t['size_3d'][0, 0].numpy(), [1.5, 1.6, 3.9], rtol=1e-6)  # h w l
    heat = t['heatmap'][0].numpy()
    assert heat[1, 7, 10] == 1.0 and heat[0].max() == 0 and heat[2].max() == 0
    r = int(np_radius(8.0, 6.0))
    sigma = (2 * r + 1) / 6
    np.testing.assert_allclose(heat[1, 7, 11], math.exp(-1 / (2 * sigma ** 2)), rtol=1e-6)
    np.testing.assert_allclose(heat[1, 7 + r, 10 + r], math.exp(-2 * r * r / (2 * sigma ** 2)),
                               rtol=1e-6)
    assert heat[1, 7, 10 + r + 1] == 0
    # boxes for distillation: the 2D box on the output grid
    np.testing.assert_allclose(t['boxes_2d'][0, 0].numpy(), [5, 3, 13, 9])


def test_targets_mean_size_crop_and_2d_centre():
    head = make_head(use_mean_size=True, use_3d_center=False)
    ds = make_sample([obj()], random_crop=True)
    t = head.get_targets([ds.gt_instances_3d], [ds.gt_instances], [ds.metainfo], (FH, FW))
    assert t['mask_2d'][0, 0] and not t['mask_3d'][0, 0]  # 3D losses masked after a crop
    assert t['indices'][0, 0].item() == 6 * FW + 9  # 2D centre (9, 6)
    np.testing.assert_allclose(t['offset_3d'][0, 0].numpy(), [1.25, 1.65], atol=1e-5)
    mean_car = np.array([1.52563191, 1.62856739, 3.52588311])
    np.testing.assert_allclose(t['size_3d'][0, 0].numpy(), [1.5, 1.6, 3.9] - mean_car, atol=1e-6)


def test_target_filters_follow_file_order():
    head = make_head()
    objs = [
        obj(label=0),  # Pedestrian: not in writelist ['Car']
        obj(difficulty=4),  # 'UnKnown'
        obj(depth=1.9),  # too close
        obj(depth=65.5),  # too far
        obj(center=(130.0, 30.0)),  # peak outside the grid
        obj(label=-1),  # e.g. Van without names
        obj(center=(-2.0, 30.0)),  # int() truncates -0.5 to 0: kept, as in MonoDLE
        obj(),  # valid, slot 7
    ]
    ds = make_sample(objs)
    t = head.get_targets([ds.gt_instances_3d], [ds.gt_instances], [ds.metainfo], (FH, FW))
    assert np.flatnonzero(t['mask_2d'][0].numpy()).tolist() == [6, 7]
    assert t['indices'][0, 6].item() == 7 * FW + 0


def test_only_first_50_label_lines_count():
    head = make_head()
    objs = [obj(label=0)] * 50 + [obj()]  # the car is line 51: ignored
    ds = make_sample(objs)
    t = head.get_targets([ds.gt_instances_3d], [ds.gt_instances], [ds.metainfo], (FH, FW))
    assert not t['mask_2d'].any() and t['heatmap'].max() == 0


def test_van_in_writelist_draws_car_channel_only():
    head = make_head(writelist=('Car', 'Van', 'Truck'))
    ds = make_sample([obj(label=-1, name='Van'), obj(label=1, name='Car', center=(81.0, 30.6))],
                     names=True)
    t = head.get_targets([ds.gt_instances_3d], [ds.gt_instances], [ds.metainfo], (FH, FW))
    assert t['mask_2d'][0].tolist()[:2] == [False, True]
    assert t['heatmap'][0, 1, 7, 10] == 1.0 and t['heatmap'][0, 1, 7, 20] == 1.0
    with pytest.raises(ValueError, match='names'):
        ds2 = make_sample([obj(label=-1)])
        head.get_targets([ds2.gt_instances_3d], [ds2.gt_instances], [ds2.metainfo], (FH, FW))


# ----------------------------------------------------------------------------- losses
def np_losses(outs, t):
    """MonoDLE's seven losses recomputed in numpy from the formulas."""
    o = {k: v.detach().double().numpy() for k, v in outs.items()}
    tt = {k: v.numpy() for k, v in t.items()}
    b = o['heatmap'].shape[0]

    def gather(name, mask):
        flat = o[name].reshape(b, o[name].shape[1], -1)
        rows = [flat[i][:, tt['indices'][i]].T for i in range(b)]
        return np.stack(rows)[mask]

    m2, m3 = tt['mask_2d'], tt['mask_3d']
    p = np.clip(1 / (1 + np.exp(-o['heatmap'])), 1e-4, 1 - 1e-4)
    y = tt['heatmap']
    pos = y == 1
    pos_l = (np.log(p) * (1 - p) ** 2)[pos].sum()
    neg_l = (np.log(1 - p) * p ** 2 * (1 - y) ** 4)[~pos].sum()
    res = {'loss_heatmap': -(pos_l + neg_l) / max(pos.sum(), 1) if pos.sum() else -neg_l}
    for key, m in (('offset_2d', m2), ('size_2d', m2), ('offset_3d', m3)):
        res[f'loss_{key}'] = np.abs(gather(key, m) - tt[key][m]).mean() if m.any() else 0.0
    d = gather('depth', m3)
    if m3.any():
        depth = 1 / (1 / (1 + np.exp(-d[:, 0])) + 1e-6) - 1
        res['loss_depth'] = (1.4142 * np.exp(-d[:, 1]) * np.abs(depth - tt['depth'][m3][:, 0])
                             + d[:, 1]).mean()
        s, st = gather('size_3d', m3), tt['size_3d'][m3]
        dim_loss = np.abs(s - st) / st
        res['loss_size_3d'] = dim_loss.mean() * np.abs(s - st).mean() / dim_loss.mean()
    else:
        res['loss_depth'] = res['loss_size_3d'] = 0.0
    h = gather('heading', m2)
    if m2.any():
        logits, bins = h[:, :12], tt['heading_bin'][m2][:, 0]
        logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
        ce = -logp[np.arange(len(bins)), bins].mean()
        reg = np.abs(h[:, 12:][np.arange(len(bins)), bins] - tt['heading_res'][m2][:, 0]).mean()
        res['loss_heading'] = ce + reg
    else:
        res['loss_heading'] = 0.0
    return res


def random_outs(head, b=2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return {k: torch.randn(b, c, FH, FW, generator=gen) for k, c in head.out_channels.items()}


def two_samples():
    a = make_sample([obj(), obj(center=(81.0, 30.6), bbox=(70, 10, 100, 40), alpha=-2.5,
                                lhw=(4.2, 1.6, 1.7), depth=30.0)], crop_scale=0.8)
    b = make_sample([obj(center=(101.0, 46.6), bbox=(90, 30, 120, 60), alpha=3.0, depth=7.0),
                     obj(label=0), obj(center=(21.0, 20.6), lhw=(3.5, 1.4, 1.5)),
                     obj(center=(61.0, 50.6), bbox=(50, 40, 70, 60), alpha=-0.3)],
                    random_crop=True)
    return [a, b]


def with_packed_targets(samples, **coder):
    """Copies of ``samples`` carrying ``monodle_targets`` as the training pipeline packs them:
    ``EncodeMonoDLETargets`` (coder arguments ``coder``) + ``PackMonoDLEInputs`` on the
    samples' annotations written back as pipeline results."""
    from monodle_plugin.datasets.transforms import EncodeMonoDLETargets, PackMonoDLEInputs
    encode = EncodeMonoDLETargets(bbox_coder=dict(type='MonoDLEBBoxCoder', **coder))
    pack = PackMonoDLEInputs()
    out = []
    for ds in samples:
        g3, g2 = ds.gt_instances_3d, ds.gt_instances
        results = dict(gt_bboxes_3d=g3.bboxes_3d, gt_labels_3d=g3.labels_3d.numpy(),
                       centers_2d=g3.centers_2d.numpy(), depths=g3.depths.numpy(),
                       gt_alphas=g3.alphas.numpy(), gt_difficulty=g3.difficulty.numpy(),
                       gt_bboxes=g2.bboxes.numpy(), gt_bboxes_labels=g2.labels.numpy(),
                       img_shape=ds.img_shape, crop_scale=ds.crop_scale,
                       random_crop=ds.random_crop)
        if 'names' in g3:
            results['gt_names'] = np.asarray(g3.names)
        packed = pack(encode(results))['data_samples']
        copy = ds.clone()
        copy.monodle_targets = packed.monodle_targets
        out.append(copy)
    return out


def test_losses_match_numpy():
    head = make_head()
    samples = two_samples()
    outs = random_outs(head)
    losses = head.loss_by_feat(outs, samples)
    t = head.get_targets([s.gt_instances_3d for s in samples], [s.gt_instances for s in samples],
                         [s.metainfo for s in samples], (FH, FW))
    ref = np_losses(outs, t)
    assert set(losses) == set(ref)
    for key, value in ref.items():
        np.testing.assert_allclose(losses[key].item(), value, rtol=1e-5, err_msg=key)


@pytest.mark.parametrize('case', ['no_objects', 'all_filtered', 'over_50', 'partly_outside'])
def test_degenerate_inputs_give_finite_losses(case):
    head = make_head()
    if case == 'no_objects':
        samples = [make_sample([]), make_sample([])]
    elif case == 'all_filtered':
        samples = [make_sample([obj(label=0), obj(depth=80.0)]), make_sample([obj(difficulty=4)])]
    elif case == 'over_50':
        samples = [make_sample([obj(center=(4.0 * (i % 32) + 1, 4.0 * (i // 32) + 1))
                                for i in range(80)])] * 2
    else:
        samples = [make_sample([obj(bbox=(-40, -10, 20, 30), center=(2.0, 3.0)),
                                obj(bbox=(100, 40, 160, 90), center=(126.0, 62.0))])] * 2
    outs = {k: v.requires_grad_() for k, v in random_outs(head).items()}
    losses = head.loss_by_feat(outs, samples)
    total = sum(losses.values())
    assert all(torch.isfinite(v) for v in losses.values()), losses
    total.backward()
    assert all(torch.isfinite(v.grad).all() for v in outs.values())
    if case == 'over_50':
        t = head.get_targets([s.gt_instances_3d for s in samples],
                             [s.gt_instances for s in samples], [s.metainfo for s in samples],
                             (FH, FW))
        assert t['mask_2d'][0].sum() == 50


# ----------------------------------------------------------------------------- decoding
def handmade_outputs(head, x=10, y=7, score=0.9, cls=1):
    outs = {k: torch.zeros(1, c, FH, FW) for k, c in head.out_channels.items()}
    outs['heatmap'][:] = -10.0
    outs['heatmap'][0, cls, y, x] = math.log(score / (1 - score))
    outs['heatmap'][0, 0, 2, 2] = math.log(0.15 / 0.85)  # below the 0.2 threshold
    outs['offset_2d'][0, :, y, x] = torch.tensor([0.5, -0.25])
    outs['size_2d'][0, :, y, x] = torch.tensor([8.0, 6.0])
    outs['offset_3d'][0, :, y, x] = torch.tensor([0.25, 0.75])
    outs['depth'][0, :, y, x] = torch.tensor([math.log(1 / 19.0), 0.5])  # depth 19 m
    outs['size_3d'][0, :, y, x] = torch.tensor([1.5, 1.6, 3.9])
    outs['heading'][0, 3, y, x] = 5.0  # bin 3 -> 90 deg
    outs['heading'][0, 12 + 3, y, x] = 0.1
    return outs


@pytest.mark.parametrize('mode', ['official', 'affine'])
def test_decoding_of_a_handmade_heatmap(mode):
    head = make_head(test_cfg=dict(decode_mode=mode))
    raw_w, raw_h = 256, 128  # raw image twice the network input
    inv = np.array([[2.0, 0, 0], [0, 2.0, 0], [0, 0, 1]])
    meta = dict(ori_shape=(raw_h, raw_w), img_shape=(IMG_H, IMG_W), cam2img=P2.tolist(),
                inv_affine_mat=inv)
    res3d, res2d = head.predict_by_feat(handmade_outputs(head), [meta])
    res, res2d = res3d[0], res2d[0]
    assert len(res) == 1 and res.labels_3d.tolist() == [1]
    assert res2d.labels.tolist() == [1] and res2d.scores.tolist() == res.scores_3d.tolist()
    np.testing.assert_allclose(res.scores_3d.item(), 0.9 * math.exp(-0.5), rtol=1e-5)
    # official: raw / feature = 8 px per cell in both directions, same as the affine here
    cx, cy = (10 + 0.5) * 8, (7 - 0.25) * 8
    np.testing.assert_allclose(res2d.bboxes[0].numpy(), [cx - 32, cy - 24, cx + 32, cy + 24],
                               rtol=1e-5)
    u, v, z = (10 + 0.25) * 8, (7 + 0.75) * 8, 19.0
    fu, cu, fv, cv = 700.0, 60.0, 700.0, 30.0
    x3d = (u - cu) * z / fu + 40.0 / -fu
    y3d = (v - cv) * z / fv + 0.5 / -fv + 1.5 / 2  # bottom centre: + h / 2
    alpha = math.pi / 2 + 0.1
    ry = alpha + math.atan2(u - cu, fu)
    box = res.bboxes_3d.tensor[0].numpy()
    np.testing.assert_allclose(box, [x3d, y3d, z, 3.9, 1.5, 1.6, ry], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(res.alphas.item(), alpha, rtol=1e-6)


def test_decoding_flip_affine_maps_back_to_raw_image():
    head = make_head(test_cfg=dict(decode_mode='affine'))
    # flipped network input: u_net = W - u_raw
    aff = np.array([[-1.0, 0, IMG_W], [0, 1.0, 0], [0, 0, 1]])
    meta = dict(ori_shape=(IMG_H, IMG_W), img_shape=(IMG_H, IMG_W), cam2img=P2.tolist(),
                inv_affine_mat=np.linalg.inv(aff))
    res2d = head.predict_by_feat(handmade_outputs(head), [meta])[1][0]
    cx, cy = IMG_W - (10 + 0.5) * 4, (7 - 0.25) * 4
    np.testing.assert_allclose(res2d.bboxes[0].numpy(), [cx - 16, cy - 12, cx + 16, cy + 12],
                               rtol=1e-5)


# ----------------------------------------------------------------------------- branches
def test_fused_branches_equal_unfused_and_channels_last():
    head = make_head(in_channels=16, feat_channels=32)
    for m in head.modules():  # non-trivial weights everywhere
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.normal_(m.weight, std=0.1)
    x = torch.randn(2, 16, FH, FW)
    head.fuse_branches = True
    fused = head(x)
    head.fuse_branches = False
    plain = head(x)
    last_plain = head(x.contiguous(memory_format=torch.channels_last))
    head.fuse_branches = True
    last = head(x.contiguous(memory_format=torch.channels_last))
    assert set(fused) == {'heatmap', 'offset_2d', 'size_2d', 'depth', 'offset_3d', 'size_3d',
                          'heading'}
    for k in plain:
        assert fused[k].shape == plain[k].shape
        torch.testing.assert_close(fused[k], plain[k], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(last[k], plain[k], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(last_plain[k], plain[k], rtol=1e-5, atol=1e-5)
    keys = set(head.state_dict())
    assert 'heatmap.0.weight' in keys and 'heading.2.bias' in keys


def test_init_like_monodle():
    head = MODELS.build(dict(type='CenterNet3DHead'))
    assert torch.all(head.heatmap[2].bias == -2.19)
    assert head.depth[0].weight.std().item() == pytest.approx(0.001, rel=0.05)
    assert torch.all(head.depth[2].bias == 0)


# ----------------------------------------------------------------------------- distillation
class _RecordingDistill(torch.nn.Module):
    def __init__(self, loss_weight=0.5):
        super().__init__()
        self.loss_weight = loss_weight
        self.calls = []

    def forward(self, depth_logit, teacher, valid, heatmap_target, boxes_2d):
        self.calls.append((depth_logit.shape, teacher.shape, valid.shape, heatmap_target.shape,
                           [b.shape for b in boxes_2d]))
        return depth_logit.mean() * self.loss_weight


def test_distillation_hook_up():
    from mmengine.structures import PixelData
    head = make_head()
    head.loss_depth_distill = _RecordingDistill()
    samples = two_samples()
    for s in samples:
        s.gt_depth = PixelData(depth=torch.rand(1, FH, FW) * 50,
                               valid=torch.ones(1, FH, FW, dtype=torch.bool))
    losses = head.loss_by_feat(random_outs(head), samples)
    assert 'loss_depth_distill' in losses
    call = head.loss_depth_distill.calls[0]
    assert call[0] == (2, 1, FH, FW) and call[1] == (2, 1, FH, FW) and call[3] == (2, 3, FH, FW)
    assert call[4] == [(2, 4), (3, 4)]
    head.loss_depth_distill.loss_weight = 0  # switched off: not called, logged as 0
    losses = head.loss_by_feat(random_outs(head), samples)
    assert len(head.loss_depth_distill.calls) == 1
    assert losses['loss_depth_distill'].item() == 0 and 'distill_valid_frac' not in losses


def test_distillation_without_teacher_depth_is_an_error():
    """A forgotten LoadDA3Depth must not train silently without distillation."""
    head = make_head()
    head.loss_depth_distill = _RecordingDistill()
    with pytest.raises(ValueError, match='LoadDA3Depth'):
        head.loss_by_feat(random_outs(head), two_samples())
    head.loss_depth_distill.loss_weight = 0  # switched off (e.g. by DistillWeightHook): fine
    assert head.loss_by_feat(random_outs(head), two_samples())['loss_depth_distill'].item() == 0


@pytest.mark.parametrize('teacher', [True, False])
def test_switched_off_uncertainty_distillation_gives_zero_gradients(teacher):
    """Weight 0 (DistillWeightHook's off_after_epoch): the seven losses are those of the head
    without distillation, loss_depth_distill is logged as 0, the teacher depth is not needed,
    and the uncertainty branch gets an exact zero gradient (not None: DDP needs one)."""
    from mmengine.structures import PixelData
    torch.manual_seed(0)
    head = make_head(use_distill_uncertainty=True,
                     loss_depth_distill=dict(type='UncertaintyDepthDistillLoss', loss_weight=0.0))
    plain = make_head()
    plain.load_state_dict(head.state_dict(), strict=False)
    samples = two_samples()
    if teacher:
        for s in samples:
            s.gt_depth = PixelData(depth=torch.rand(1, FH, FW) * 50 + 1,
                                   valid=torch.ones(1, FH, FW, dtype=torch.bool))
    x = torch.randn(2, 8, FH, FW, generator=torch.Generator().manual_seed(3))
    losses = head.loss(x, samples)
    expected = plain.loss(x, samples)
    assert set(losses) == set(expected) | {'loss_depth_distill'}
    assert losses['loss_depth_distill'].item() == 0
    assert not str(losses['loss_depth_distill'].item()).startswith('-')
    for key, value in expected.items():
        assert torch.equal(losses[key], value), key
    sum(losses.values()).backward()
    sum(expected.values()).backward()
    for name, p in head.named_parameters():
        if name.startswith('dense_depth_uncertainty'):
            assert p.grad is not None and torch.equal(p.grad, torch.zeros_like(p)), name
        else:
            assert torch.equal(p.grad, plain.get_parameter(name).grad), name
    # switched on again: the branch learns
    head.zero_grad()
    head.loss_depth_distill.loss_weight = 0.5
    if teacher:
        sum(head.loss(x, samples).values()).backward()
        assert head.dense_depth_uncertainty[2].weight.grad.abs().sum() > 0


# ----------------------------------------------------------------------------- DDP
def _ddp_worker(rank, world, port, samples, outs, queue):
    import torch.distributed as dist
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world)
    torch.set_num_threads(1)
    head = make_head()
    mine = {k: v[rank:rank + 1].clone().requires_grad_() for k, v in outs.items()}
    calls, all_reduce = [], dist.all_reduce
    dist.all_reduce = lambda *a, **k: calls.append(1) or all_reduce(*a, **k)
    try:
        total = sum(head.loss_by_feat(mine, samples[rank:rank + 1]).values())
    finally:
        dist.all_reduce = all_reduce
    total.backward()
    grads = torch.cat([mine[k].grad.flatten() for k in sorted(mine)])
    gathered = [torch.zeros_like(grads) for _ in range(world)]
    dist.all_gather(gathered, grads)
    if rank == 0:
        # DDP averages gradients of replicated parameters; here the per-rank outputs are
        # disjoint slices, so the equivalent is each rank's gradient divided by world.
        # as numpy (pickled by value): a tensor would be passed as a shared-memory file
        # descriptor that the parent cannot fetch once this process has exited
        queue.put(((torch.stack(gathered) / world).numpy(), len(calls)))
    dist.barrier()  # no rank tears gloo down while the other still talks to it
    dist.destroy_process_group()


def test_two_process_gradients_equal_single_process():
    """Ranks see different object counts (2 vs 3 with 2D targets, 2 vs 0 with 3D ones)."""
    import socket

    import torch.multiprocessing as mp
    head = make_head()
    samples = two_samples()
    outs = random_outs(head)
    single = {k: v.clone().requires_grad_() for k, v in outs.items()}
    sum(head.loss_by_feat(single, samples).values()).backward()
    expected = torch.stack([torch.cat([single[k].grad[r].flatten() for k in sorted(single)])
                            for r in range(2)])
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    ctx = mp.get_context('spawn')
    queue = ctx.Queue()
    procs = [ctx.Process(target=_ddp_worker, args=(r, 2, port, samples, outs, queue))
             for r in range(2)]
    for p in procs:
        p.start()
    got, collectives = queue.get(timeout=120)
    for p in procs:
        p.join(timeout=60)
    torch.testing.assert_close(torch.from_numpy(got), expected, rtol=1e-5, atol=1e-8)
    assert collectives == 1  # every normaliser of the iteration in one all_reduce


def test_missing_fields_are_named():
    head = make_head()
    ds = make_sample([obj()])
    del ds.gt_instances_3d.alphas
    with pytest.raises(KeyError, match='alphas'):
        head.get_targets([ds.gt_instances_3d], [ds.gt_instances], [ds.metainfo], (FH, FW))


HOST_READS = ('item', 'tolist', '__bool__', '__int__', '__float__')
#: what else copies a tensor to the host: forbidden on the packed-target path
HOST_COPIES = ('cpu', 'numpy')


@pytest.mark.parametrize('packed', [False, True], ids=['encoded_in_head', 'packed_targets'])
@pytest.mark.parametrize('distill', [None, 'l1', 'silog'])
def test_one_collective_and_no_host_sync_per_iteration(monkeypatch, distill, packed):
    """All normalisers of one iteration (7 losses + distillation) go through ONE all_reduce, and
    nothing on the training path reads a tensor back to the host (.item(), bool(), float());
    with packed targets (EncodeMonoDLETargets) not even .cpu(), .numpy() or .to('cpu'): the
    host syncs counted are 0."""
    import torch.distributed as dist
    from mmengine.structures import PixelData

    from monodle_plugin.models.utils import dist_utils

    head = make_head()
    if distill is not None:
        head.loss_depth_distill = MODELS.build(dict(type='DepthDistillLoss', loss_type=distill))
    samples = two_samples()
    for s in samples:
        s.gt_depth = PixelData(depth=torch.rand(1, FH, FW) * 50 + 1,
                               valid=torch.ones(1, FH, FW, dtype=torch.bool))
    if packed:
        samples = with_packed_targets(samples)
    outs = random_outs(head)
    expected = head.loss_by_feat(outs, samples)  # 1 process: no collective at all
    calls, syncs = [], []

    def fake_all_reduce(tensor, op=None, **kwargs):  # the other rank contributes zeros
        calls.append(tensor.shape)

    monkeypatch.setattr(dist_utils, 'get_world_size', lambda: 2)
    monkeypatch.setattr(dist, 'all_reduce', fake_all_reduce)
    monkeypatch.setattr(dist, 'get_backend', lambda *a: 'gloo')

    def counting(name, original):
        def wrapper(self, *args, **kwargs):
            syncs.append(name)
            return original(self, *args, **kwargs)
        return wrapper

    for name in HOST_READS + (HOST_COPIES if packed else ()):
        monkeypatch.setattr(torch.Tensor, name, counting(name, getattr(torch.Tensor, name)))
    if packed:
        to = torch.Tensor.to

        def counting_to(self, *args, **kwargs):
            target = kwargs.get('device', args[0] if args else None)
            if isinstance(target, (str, torch.device)) and torch.device(target).type == 'cpu':
                syncs.append(".to('cpu')")
            return to(self, *args, **kwargs)
        monkeypatch.setattr(torch.Tensor, 'to', counting_to)
    losses = head.loss_by_feat(outs, samples)
    monkeypatch.undo()
    assert syncs == [], f'{len(syncs)} host syncs on the training path: {syncs}'
    assert len(calls) == 1, calls
    assert set(losses) == set(expected)
    # world 2 with an empty second rank: this rank's loss is world x its share (DDP divides
    # the summed gradients by 2); silog reports the global value itself
    for key, value in losses.items():
        factor = 1.0 if (key == 'loss_depth_distill' and distill == 'silog'
                         or key == 'distill_valid_frac') else 2.0  # a fraction: not scaled
        torch.testing.assert_close(value, expected[key] * factor, rtol=1e-6, atol=0)


def test_host_sync_counter_sees_the_in_head_encoding(monkeypatch):
    """The counter of the test above is not blind: encoding in the head copies to the host."""
    head = make_head()
    samples, syncs = two_samples(), []
    cpu = torch.Tensor.cpu
    monkeypatch.setattr(torch.Tensor, 'cpu', lambda self: syncs.append('cpu') or cpu(self))
    head.loss_by_feat(random_outs(head), samples)
    monkeypatch.undo()
    assert len(syncs) >= 2 * 6  # six fields per sample


def _losses_and_grads(head, outs, samples):
    outs = {k: v.clone().requires_grad_() for k, v in outs.items()}
    losses = head.loss_by_feat(outs, samples)
    sum(losses.values()).backward()
    return losses, {k: v.grad for k, v in outs.items()}


@pytest.mark.parametrize('case', ['two', 'no_objects', 'over_50', 'van'])
def test_packed_targets_give_the_same_losses_and_gradients(case):
    """EncodeMonoDLETargets + PackMonoDLEInputs -> the head: bit for bit the targets, losses and
    gradients of encoding in the head (with the teacher depth: the distillation's boxes and
    heatmap come from the targets too)."""
    from mmengine.structures import PixelData
    coder = dict(writelist=('Car', 'Van', 'Truck')) if case == 'van' else {}
    head = make_head(**coder)
    head.loss_depth_distill = MODELS.build(dict(type='DepthDistillLoss', foreground='box'))
    if case == 'two':
        samples = two_samples()
    elif case == 'no_objects':
        samples = [make_sample([]), two_samples()[1]]
    elif case == 'over_50':
        samples = [make_sample([obj(center=(4.0 * (i % 32) + 1, 4.0 * (i // 32) + 1))
                                for i in range(80)], random_crop=True), two_samples()[0]]
    else:
        samples = [make_sample([obj(label=-1, name='Van'), obj(label=1, name='Car',
                                                              center=(81.0, 30.6))], names=True),
                   make_sample([obj(label=1, name='Car')], names=True)]
    for s in samples:
        s.gt_depth = PixelData(depth=torch.rand(1, FH, FW) * 50 + 1,
                               valid=torch.rand(1, FH, FW) > 0.5)
    packed = with_packed_targets(samples, **coder)
    feat_hw = (FH, FW)
    ref_t, ref_s = head.encode_targets(samples, feat_hw, torch.device('cpu'))
    got_t, got_s = head.packed_targets(packed, feat_hw, torch.device('cpu'))
    assert set(got_t) == set(ref_t)
    for key in ref_t:
        assert got_t[key].dtype == ref_t[key].dtype and torch.equal(got_t[key], ref_t[key]), key
    assert torch.equal(got_s['2d'], ref_s['2d']) and torch.equal(got_s['3d'], ref_s['3d'])
    assert got_s['num_2d'] == ref_s['num_2d']
    outs = random_outs(head)
    ref_l, ref_g = _losses_and_grads(head, outs, samples)
    got_l, got_g = _losses_and_grads(head, outs, packed)
    assert set(got_l) == set(ref_l)
    for key in ref_l:
        assert torch.equal(got_l[key], ref_l[key]), key
    for key in ref_g:
        assert torch.equal(got_g[key], ref_g[key]), key
    # one sample without packed targets: the head encodes the whole batch itself
    mixed = [packed[0], samples[1]]
    assert head.packed_targets(mixed, feat_hw, torch.device('cpu')) is None
    mixed_l, _ = _losses_and_grads(head, outs, mixed)
    assert all(torch.equal(mixed_l[key], ref_l[key]) for key in ref_l)


def test_packed_targets_of_another_coder_or_size_are_an_error():
    head = make_head()
    samples = two_samples()
    other = with_packed_targets(samples, writelist=('Car', 'Pedestrian'), max_objs=40)
    with pytest.raises(ValueError, match=r'EncodeMonoDLETargets.*\(max_objs, writelist\)'):
        head.loss_by_feat(random_outs(head), other)
    packed = with_packed_targets(samples)
    outs = {k: v[..., :FW - 4] for k, v in random_outs(head).items()}  # another output size
    with pytest.raises(ValueError, match=r'\(16, 32\) target grid .* outputs \(16, 28\)'):
        head.loss_by_feat(outs, packed)


def test_unknown_head_arguments_and_coder_mismatch_are_errors():
    # coder settings belong in bbox_head.bbox_coder: on the head they are unknown arguments
    with pytest.raises(TypeError, match='writelist'):
        MODELS.build(dict(type='CenterNet3DHead', writelist=('Car', )))
    with pytest.raises(ValueError, match='num_classes'):
        MODELS.build(dict(type='CenterNet3DHead', num_classes=3,
                          bbox_coder=dict(type='MonoDLEBBoxCoder', num_classes=1,
                                          class_names=('Car', ), cls_mean_size=[[1, 1, 1]])))
