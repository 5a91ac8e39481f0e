"""UncertaintyDepthDistillLoss equals the seed system's Kendall distillation (value and gradient),
and a hand-computed value; DDP exactness is in test_uncertainty_distill_ddp.py."""
import math

import pytest
import torch

import monodle_plugin  # noqa: F401  (registers the loss)
from monodle_plugin.models.losses.uncertainty_depth_distill_loss import (
    UncertaintyDepthDistillLoss,
)

torch.set_num_threads(1)


# ---- transcription of the seed system (MonoDDLE commit ca005eb) ---------------------------
def seed_kendall_uncertainty_distill_loss(pred, teacher, log_variance, weight=None):
    """lib/losses/uncertainty_loss.py::kendall_uncertainty_distill_loss, verbatim."""
    residual_sq = (pred - teacher) ** 2
    loss = 0.5 * torch.exp(-log_variance) * residual_sq + 0.5 * log_variance
    if weight is not None:
        loss = loss * weight
        return loss.sum() / weight.sum().clamp(min=1.0)
    return loss.mean()


def seed_compute_uncertainty_depth_distill_loss(input, target, foreground_weight=5.0):
    """lib/losses/centernet_loss.py::compute_uncertainty_depth_distill_loss, verbatim."""
    device = input['depth'].device
    if 'da3_depth' not in target:
        return torch.tensor(0.0, device=device)
    raw = input['depth'][:, 0:1]
    pred_depth = 1.0 / (raw.sigmoid() + 1e-6) - 1.0
    log_variance = input['dense_depth_uncertainty']
    teacher_depth = target['da3_depth']
    valid_mask = target['da3_depth_mask']
    if valid_mask.sum() == 0:
        return torch.tensor(0.0, device=device)
    heatmap = target['heatmap']
    fg = heatmap.max(dim=1, keepdim=True)[0]
    weight = 1.0 + (foreground_weight - 1.0) * fg
    weight = weight * valid_mask
    return seed_kendall_uncertainty_distill_loss(pred_depth, teacher_depth, log_variance,
                                                 weight=weight)
# --------------------------------------------------------------------------------------------


def make_inputs(seed=0, shape=(3, 1, 7, 9), all_invalid=False):
    g = torch.Generator().manual_seed(seed)
    b, _, h, w = shape
    depth = torch.randn(b, 2, h, w, generator=g, dtype=torch.float64) * 2  # (depth, log sigma)
    log_var = torch.randn(shape, generator=g, dtype=torch.float64)
    valid = torch.rand(shape, generator=g) > (1.1 if all_invalid else 0.35)
    # the seed stores 0 where the teacher is invalid
    teacher = torch.where(valid, torch.rand(shape, generator=g, dtype=torch.float64) * 50 + 1,
                          torch.zeros(shape, dtype=torch.float64))
    heat = torch.rand(b, 3, h, w, generator=g, dtype=torch.float64) ** 4
    # the plugin's foreground weights are computed in float32: keep the heatmap representable
    heat = heat.float().double()
    return depth.requires_grad_(True), log_var.requires_grad_(True), teacher, valid, heat


@pytest.mark.parametrize('foreground_weight', [5.0, 1.0, 0.3])
@pytest.mark.parametrize('lam', [0.5, 1.0])
@pytest.mark.parametrize('seed', [0, 1])
def test_equals_seed_value_and_gradient(foreground_weight, lam, seed):
    depth, log_var, teacher, valid, heat = make_inputs(seed)
    ref = lam * seed_compute_uncertainty_depth_distill_loss(
        dict(depth=depth, dense_depth_uncertainty=log_var),
        dict(da3_depth=teacher, da3_depth_mask=valid.double(), heatmap=heat),
        foreground_weight=foreground_weight)
    ref_grads = torch.autograd.grad(ref, (depth, log_var))
    loss = UncertaintyDepthDistillLoss(foreground_weight=foreground_weight, loss_weight=lam)(
        depth[:, 0:1], log_var, teacher, valid, heatmap_target=heat)
    grads = torch.autograd.grad(loss, (depth, log_var))
    assert loss.dtype == torch.float64
    torch.testing.assert_close(loss, ref, rtol=1e-6, atol=0)
    for got, want in zip(grads, ref_grads):
        assert want.abs().sum() > 0
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-12)


def test_float32_close_to_seed():
    depth, log_var, teacher, valid, heat = make_inputs(3)
    ref = seed_compute_uncertainty_depth_distill_loss(
        dict(depth=depth, dense_depth_uncertainty=log_var),
        dict(da3_depth=teacher, da3_depth_mask=valid.double(), heatmap=heat))
    loss = UncertaintyDepthDistillLoss(loss_weight=1.0)(
        depth[:, 0:1].float(), log_var.float(), teacher.float(), valid, heatmap_target=heat.float())
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)


def test_hand_computed():
    """Three pixels: student depths 10, 20, 30 (logits inverted), teacher 12, 20, 25,
    log-variances 0, 1, -1, heatmap peaks 1, 0.5, 0 -> w = 5, 3, 1 (foreground_weight 5)."""
    depths = torch.tensor([10.0, 20.0, 30.0], dtype=torch.float64)
    p = 1.0 / (depths + 1.0) - 1e-6
    x = torch.log(p / (1 - p)).reshape(1, 1, 1, 3)
    s = torch.tensor([0.0, 1.0, -1.0], dtype=torch.float64).reshape(1, 1, 1, 3)
    t = torch.tensor([12.0, 20.0, 25.0], dtype=torch.float64).reshape(1, 1, 1, 3)
    heat = torch.tensor([1.0, 0.5, 0.0], dtype=torch.float64).reshape(1, 1, 1, 3)
    w = [5.0, 3.0, 1.0]
    per = [0.5 * math.exp(-sv) * r * r + 0.5 * sv for sv, r in zip([0, 1, -1], [2, 0, 5])]
    expected = 0.5 * sum(wi * li for wi, li in zip(w, per)) / sum(w)
    loss = UncertaintyDepthDistillLoss(loss_weight=0.5)(x, s, t, torch.ones_like(t, dtype=bool),
                                                        heatmap_target=heat)
    assert loss.item() == pytest.approx(expected, rel=1e-9)


def test_invalid_pixels_excluded_and_all_invalid_is_zero():
    depth, log_var, teacher, valid, heat = make_inputs(0)
    loss_fn = UncertaintyDepthDistillLoss()
    ref = loss_fn(depth[:, 0:1], log_var, teacher, valid, heatmap_target=heat)
    garbage = torch.where(valid, teacher, torch.full_like(teacher, float('nan')))
    assert loss_fn(depth[:, 0:1], log_var, garbage, valid, heatmap_target=heat).item() == \
        pytest.approx(ref.item(), rel=1e-12)
    depth, log_var, teacher, valid, heat = make_inputs(0, all_invalid=True)
    zero = loss_fn(depth[:, 0:1], log_var, teacher, valid, heatmap_target=heat)
    assert zero.item() == 0.0 and zero.requires_grad  # seed: 0; here still in the graph
    zero.backward()
    assert log_var.grad.abs().sum() == 0


def test_shape_errors_name_the_input():
    x = torch.zeros(1, 1, 4, 4)
    with pytest.raises(ValueError, match='log_variance'):
        UncertaintyDepthDistillLoss()(x, torch.zeros(1, 1, 4, 5), x, x > 0)


def test_registered():
    from mmdet3d.registry import MODELS
    loss = MODELS.build(dict(type='UncertaintyDepthDistillLoss', loss_weight=0.25))
    assert isinstance(loss, UncertaintyDepthDistillLoss) and loss.loss_weight == 0.25
