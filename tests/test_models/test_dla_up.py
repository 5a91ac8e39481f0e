"""DLAUp: MonoDLE's aggregation structure, names, bilinear init, shapes, channels_last."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmdet3d.registry import MODELS

import monodle_plugin  # noqa: F401  (registers)


def test_dla34_names_shapes_and_output():
    neck = MODELS.build(dict(type='DLAUp', in_channels=[64, 128, 256, 512],
                             strides=[4, 8, 16, 32]))
    sd = neck.state_dict()
    # MonoDLE's DLAUp over DLA-34 levels 2..5: ida_0 (2 inputs), ida_1 (3), ida_2 (4)
    assert sd['ida_0.proj_1.conv.weight'].shape == (256, 512, 3, 3)
    assert sd['ida_0.node_1.conv.weight'].shape == (256, 512, 3, 3)
    assert sd['ida_1.proj_2.conv.weight'].shape == (128, 256, 3, 3)
    assert sd['ida_2.proj_3.conv.weight'].shape == (64, 128, 3, 3)
    assert sd['ida_2.up_3.weight'].shape == (64, 1, 4, 4)
    assert 'ida_2.node_3.bn.running_var' in sd and 'ida_3.proj_1.conv.weight' not in sd
    assert len(sd) == 78
    feats = [torch.randn(1, c, 32 // s, 64 // s) for c, s in ((64, 1), (128, 2), (256, 4),
                                                              (512, 8))]
    out = neck(feats)
    assert isinstance(out, tuple) and out[0].shape == (1, 64, 32, 64)


def test_bilinear_up_weights():
    neck = MODELS.build(dict(type='DLAUp', in_channels=[4, 8]))
    w = neck.ida_0.up_1.weight  # factor 2: kernel 4
    line = torch.tensor([0.25, 0.75, 0.75, 0.25])
    torch.testing.assert_close(w[2, 0], line[:, None] * line[None, :])
    torch.testing.assert_close(w[0], w[3])


def _cbr(x, m):
    x = F.conv2d(x, m.conv.weight, padding=1)
    x = F.batch_norm(x, m.bn.running_mean, m.bn.running_var, m.bn.weight, m.bn.bias, False,
                     0.0, m.bn.eps)
    return F.relu(x)


def test_two_level_aggregation_matches_functional_reference():
    neck = MODELS.build(dict(type='DLAUp', in_channels=[2, 4, 8], start_level=1)).eval()
    with torch.no_grad():
        for p in neck.modules():
            if isinstance(p, torch.nn.BatchNorm2d):
                p.running_mean.uniform_(-0.2, 0.2)
                p.running_var.uniform_(0.5, 1.5)
                p.bias.uniform_(-0.2, 0.2)
    fine, coarse = torch.randn(1, 4, 8, 8), torch.randn(1, 8, 4, 4)
    ida = neck.ida_0
    up = F.conv_transpose2d(_cbr(coarse, ida.proj_1), ida.up_1.weight, stride=2, padding=1,
                            groups=4)
    ref = _cbr(torch.cat([fine, up], 1), ida.node_1)
    with torch.no_grad():
        out = neck([torch.randn(1, 2, 16, 16), fine, coarse])[0]
    torch.testing.assert_close(out, ref)
    assert math.isclose(out.abs().sum().item(), ref.abs().sum().item(), rel_tol=1e-6)


def test_channels_last_equals_contiguous():
    neck = MODELS.build(dict(type='DLAUp', in_channels=[8, 16, 32])).eval()
    feats = [torch.randn(2, c, 16 // s, 32 // s) for c, s in ((8, 1), (16, 2), (32, 4))]
    with torch.no_grad():
        ref = neck(feats)[0]
        out = neck([f.contiguous(memory_format=torch.channels_last) for f in feats])[0]
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match='at least two'):
        MODELS.build(dict(type='DLAUp', in_channels=[8]))
    with pytest.raises(ValueError, match='double'):
        MODELS.build(dict(type='DLAUp', in_channels=[8, 16], strides=[4, 16]))
    neck = MODELS.build(dict(type='DLAUp', in_channels=[8, 16]))
    with pytest.raises(ValueError, match='expected 2'):
        neck([torch.randn(1, 8, 4, 4)])
