"""DepthDistillLoss against hand-computed values (numpy), invalid handling and gradients."""
import numpy as np
import pytest
import torch

import monodle_plugin  # noqa: F401  (registers the loss)
from monodle_plugin.models.losses.depth_distill_loss import (
    DepthDistillLoss,
    box_foreground_mask,
    silog_from_sums,
    silog_surrogate,
)
from monodle_plugin.models.utils import dist_utils
from monodle_plugin.structures.geometry import decode_depth

torch.set_num_threads(1)


def logit_for_depth(depth):
    """Inverse of MonoDLE's decoding d = 1 / (sigmoid(x) + 1e-6) - 1 (float64)."""
    p = 1.0 / (np.asarray(depth, dtype=np.float64) + 1.0) - 1e-6
    return np.log(p / (1.0 - p))


def as_map(values, dtype=torch.float32):
    return torch.tensor(np.asarray(values), dtype=dtype).reshape(1, 1, 1, -1)


STUDENT = [10.0, 20.0, 30.0]
TEACHER = [12.0, 20.0, 25.0]
HEAT = [1.0, 0.5, 0.0]  # max over classes of the Gaussian heatmap target


def inputs(valid=(True, True, True), teacher=TEACHER):
    x = as_map(logit_for_depth(STUDENT)).requires_grad_(True)
    heat = torch.zeros(1, 3, 1, 3)
    heat[0, 1, 0] = torch.tensor(HEAT)  # class channel 1 holds the peaks
    heat[0, 0, 0, 1] = 0.2  # lower values in another channel do not count (max over C)
    return x, as_map(teacher), as_map(valid, torch.bool), heat


def test_decoding_matches_monodle():
    x = as_map(logit_for_depth(STUDENT))
    np.testing.assert_allclose(decode_depth(x).flatten().numpy(), STUDENT, rtol=1e-5)


def test_l1_soft_heatmap_weights_hand_computed():
    x, t, v, heat = inputs()
    loss = DepthDistillLoss(loss_type='l1', foreground_weight=5.0, loss_weight=0.5)
    # w = 1 + 4 * [1, 0.5, 0] = [5, 3, 1]; |d - d*| = [2, 0, 5]
    expected = 0.5 * (5 * 2 + 3 * 0 + 1 * 5) / (5 + 3 + 1)
    assert loss(x, t, v, heatmap_target=heat).item() == pytest.approx(expected, rel=1e-4)


def test_l1_invalid_pixels_excluded_whatever_their_value():
    for bad in (0.0, -3.0, float('nan'), float('inf')):
        x, t, v, heat = inputs(valid=(False, True, True), teacher=[bad, 20.0, 25.0])
        loss = DepthDistillLoss(loss_type='l1', foreground_weight=5.0, loss_weight=1.0)
        # pixel 0 dropped: (3 * 0 + 1 * 5) / (3 + 1)
        assert loss(x, t, v, heatmap_target=heat).item() == pytest.approx(1.25, rel=1e-4)
    # a teacher value of 0 / NaN is invalid even if the mask says valid
    x, t, v, heat = inputs(teacher=[float('nan'), 20.0, 25.0])
    out = DepthDistillLoss(loss_weight=1.0)(x, t, v, heatmap_target=heat)
    assert out.item() == pytest.approx(1.25, rel=1e-4)


def test_l1_box_foreground_hand_computed():
    x, t, v, _ = inputs()
    # cell centres at 0.5, 1.5, 2.5: only cell 0 is inside [0.2, 1.4]
    boxes = [torch.tensor([[0.2, 0.0, 1.4, 1.0]])]
    loss = DepthDistillLoss(foreground='box', foreground_weight=5.0, loss_weight=1.0)
    assert loss(x, t, v, boxes_2d=boxes).item() == pytest.approx((5 * 2 + 5) / 7, rel=1e-4)
    plain = DepthDistillLoss(foreground='none', loss_weight=1.0)
    assert plain(x, t, v).item() == pytest.approx(7 / 3, rel=1e-4)


def test_box_mask_grid_convention():
    mask = box_foreground_mask([torch.tensor([[1.0, 1.0, 2.6, 1.4]]), torch.zeros(0, 4)],
                               (2, 1, 3, 4))
    # y range [1.0, 1.4] contains no cell centre (0.5, 1.5, 2.5), image 1 has no box
    assert not mask.any()
    mask = box_foreground_mask([torch.tensor([[1.0, 0.5, 2.6, 1.5]])], (1, 1, 3, 4))
    expected = np.zeros((1, 1, 3, 4), bool)
    expected[0, 0, 0:2, 1:3] = True
    np.testing.assert_array_equal(mask.numpy(), expected)


def numpy_silog(d, t, w, factor):
    g = np.log(d) - np.log(t)
    mean_g = (w * g).sum() / w.sum()
    mean_g2 = (w * g * g).sum() / w.sum()
    return np.sqrt(mean_g2 - factor * mean_g ** 2 + 1e-8)


def test_silog_default_is_unweighted_reference_variant():
    x, t, v, heat = inputs(valid=(True, False, True))
    loss = DepthDistillLoss(loss_type='silog', loss_weight=1.0)  # factor 0.5, unweighted
    d, tt = np.array(STUDENT)[[0, 2]], np.array(TEACHER)[[0, 2]]
    expected = numpy_silog(d, tt, np.ones(2), 0.5)
    assert loss(x, t, v, heatmap_target=heat).item() == pytest.approx(expected, rel=1e-4)


def test_silog_weighted_and_factor():
    x, t, v, heat = inputs()
    loss = DepthDistillLoss(loss_type='silog', silog_weighted=True, variance_factor=0.85,
                            foreground_weight=5.0, loss_weight=2.0)
    expected = 2.0 * numpy_silog(np.array(STUDENT), np.array(TEACHER), np.array([5., 3., 1.]),
                                 0.85)
    assert loss(x, t, v, heatmap_target=heat).item() == pytest.approx(expected, rel=1e-4)


def test_silog_clamps_non_positive_student():
    # a logit so large that the decoded depth is ~ -1e-6 (< 0): log of the 1e-3 clamp
    x = torch.full((1, 1, 1, 1), 30.0, requires_grad=True)
    t, v = torch.full((1, 1, 1, 1), 2.0), torch.ones(1, 1, 1, 1, dtype=torch.bool)
    out = DepthDistillLoss(loss_type='silog', variance_factor=0.0, loss_weight=1.0)(x, t, v)
    assert out.item() == pytest.approx(abs(np.log(1e-3) - np.log(2.0)), rel=1e-4)
    out.backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize('loss_type', ['l1', 'silog'])
@pytest.mark.parametrize('foreground', ['heatmap', 'box', 'none'])
def test_all_invalid_gives_zero_and_finite_gradients(loss_type, foreground):
    x = torch.randn(2, 1, 4, 5, requires_grad=True)
    t = torch.full((2, 1, 4, 5), float('nan'))
    v = torch.zeros(2, 1, 4, 5, dtype=torch.bool)
    heat = torch.rand(2, 3, 4, 5)
    boxes = [torch.tensor([[0., 0., 3., 3.]]), torch.zeros(0, 4)]
    loss = DepthDistillLoss(loss_type=loss_type, foreground=foreground, loss_weight=0.5)
    out = loss(x, t, v, heatmap_target=heat, boxes_2d=boxes)
    assert out.item() == 0.0
    out.backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


@pytest.mark.parametrize('loss_type', ['l1', 'silog'])
def test_gradients_reach_only_the_depth_logit(loss_type):
    x = torch.randn(1, 1, 4, 5, requires_grad=True)
    t = (torch.rand(1, 1, 4, 5) * 30 + 1).requires_grad_(True)
    v = torch.rand(1, 1, 4, 5) > 0.3
    v[0, 0, 0, 0] = False
    heat = torch.rand(1, 3, 4, 5, requires_grad=True)
    loss = DepthDistillLoss(loss_type=loss_type, silog_weighted=True, loss_weight=1.0)
    loss(x, t, v, heatmap_target=heat).backward()
    assert t.grad is None and heat.grad is None
    assert x.grad.abs().sum() > 0
    assert x.grad[~v].abs().max() == 0  # invalid pixels get no gradient


def test_l1_gradient_hand_computed():
    x, t, v, heat = inputs()
    DepthDistillLoss(loss_weight=1.0)(x, t, v, heatmap_target=heat).backward()
    s = torch.sigmoid(x.detach().double())
    dd_dx = -s * (1 - s) / (s + 1e-6) ** 2
    expected = torch.tensor([5.0, 0.0, 1.0]).double() * torch.sign(
        torch.tensor(STUDENT) - torch.tensor(TEACHER)).double() * dd_dx.flatten() / 9
    # pixel 1 sits exactly on the kink of |d - d*| (d == d*): compare the other two
    np.testing.assert_allclose(x.grad.flatten().numpy()[[0, 2]], expected.numpy()[[0, 2]],
                               rtol=1e-3)


def test_l1_ddp_normaliser_equals_single_process(monkeypatch):
    """Two simulated ranks: DDP's mean of the rank gradients equals one process's gradient."""
    torch.manual_seed(0)
    x = torch.randn(4, 1, 3, 5)
    t = torch.rand(4, 1, 3, 5) * 40 + 1
    v = torch.rand(4, 1, 3, 5) > 0.4
    v[:2] = False  # rank 0 sees nothing valid
    heat = torch.rand(4, 3, 3, 5)
    loss = DepthDistillLoss(loss_weight=1.0)
    full_x = x.clone().requires_grad_(True)
    loss(full_x, t, v, heatmap_target=heat).backward()

    total_w = loss.pixel_weights(v, heat).sum().reshape(1)
    monkeypatch.setattr(dist_utils, 'get_world_size', lambda: 2)
    grads = []
    for rank in (slice(0, 2), slice(2, 4)):
        xr = x[rank].clone().requires_grad_(True)
        loss(xr, t[rank], v[rank], heatmap_target=heat[rank], global_stats=total_w).backward()
        grads.append(xr.grad)
    ddp_grad = torch.cat(grads) / 2  # DDP averages the ranks' gradients
    torch.testing.assert_close(ddp_grad, full_x.grad)


def test_silog_ddp_surrogate_value_and_gradient_are_exact():
    torch.manual_seed(1)
    d = torch.rand(10, dtype=torch.float64) * 20 + 1
    t = torch.rand(10, dtype=torch.float64) * 20 + 1
    w = torch.rand(10, dtype=torch.float64) + 0.5
    factor = 0.5

    def sums(dd, tt, ww):
        g = torch.log(dd) - torch.log(tt)
        return torch.stack([ww.sum(), (ww * g).sum(), (ww * g * g).sum()])

    full = d.clone().requires_grad_(True)
    ref = silog_from_sums(sums(full, t, w), factor)
    ref.backward()
    parts = [slice(0, 3), slice(3, 10)]
    local = [d[p].clone().requires_grad_(True) for p in parts]
    local_sums = [sums(loc, t[p], w[p]) for loc, p in zip(local, parts)]
    totals = (local_sums[0] + local_sums[1]).detach()
    values = [silog_surrogate(s, totals, factor, 2) for s in local_sums]
    for val in values:
        assert val.item() == pytest.approx(ref.item(), rel=1e-12)
    for val in values:
        val.backward()
    ddp_grad = torch.cat([loc.grad for loc in local]) / 2
    torch.testing.assert_close(ddp_grad, full.grad)


def test_bad_arguments():
    with pytest.raises(ValueError, match='loss_type'):
        DepthDistillLoss(loss_type='l2')
    with pytest.raises(ValueError, match='foreground'):
        DepthDistillLoss(foreground='inside')
    x, t, v, _ = inputs()
    with pytest.raises(ValueError, match='heatmap_target'):
        DepthDistillLoss()(x, t, v)
    with pytest.raises(ValueError, match='match'):
        DepthDistillLoss()(x, t[..., :2], v)


def test_built_from_registry():
    from mmdet3d.registry import MODELS
    loss = MODELS.build(dict(type='DepthDistillLoss', loss_type='silog', loss_weight=0.25))
    assert isinstance(loss, DepthDistillLoss) and loss.loss_weight == 0.25
