"""CenterNet3DHead under autocast (``tools/train.py --amp``): the depth decoding inside the loss
and every loss run in float32 although the convolutions run in a low-precision type.

bfloat16 autocast on the CPU stands in for CUDA's float16 (the same code path: the head's maps
arrive in the low type, elementwise ops such as ``sigmoid`` keep it). The reference decode is
computed here, outside autocast, in float32 from the same low-precision logits.
"""
import pytest
import torch
from mmdet3d.registry import MODELS
from mmengine.structures import PixelData
from test_centernet3d_head import FH, FW, make_head, two_samples

from monodle_plugin.models.task_modules.coders.monodle_bbox_coder import gather_at
from monodle_plugin.models.utils.precision import loss_precision
from monodle_plugin.structures.geometry import decode_depth

#: initial decoded depth (m) of the depth branch: far objects, where a low-precision decode is
#: worst (computed over 40-65 m: decoding a logit in bfloat16 is off by up to 0.29 m, in float16
#: by 0.04 m; the logit's own rounding at the convolution's output, which stays, adds up to
#: 1.0 m / 0.13 m -- issue 27's 0.16 m in float16 is the sum)
DEPTH_INIT = 50.0
DISTILL = {
    'l1': dict(type='DepthDistillLoss', loss_type='l1'),
    'uncertainty': dict(type='UncertaintyDepthDistillLoss'),
}


def test_loss_precision_casts_only_low_precision_floats():
    x32 = torch.randn(3)
    assert loss_precision(x32) is x32  # float32 runs stay bit-identical (no copy, no cast)
    x64 = x32.double()
    assert loss_precision(x64) is x64
    idx = torch.arange(3)
    assert loss_precision(idx) is idx
    for low in (torch.float16, torch.bfloat16):
        y = loss_precision(x32.to(low))
        assert y.dtype == torch.float32 and torch.equal(y, x32.to(low).float())


def _head_and_samples(distill):
    torch.manual_seed(0)
    head = make_head(depth_init=DEPTH_INIT, init_std=0.01,
                     use_distill_uncertainty=distill == 'uncertainty',
                     loss_depth_distill=DISTILL[distill])
    head.train()
    samples = two_samples()
    for s in samples:
        s.gt_depth = PixelData(depth=torch.rand(1, FH, FW) * 60 + 1,
                               valid=torch.rand(1, FH, FW) > 0.2)
    feats = torch.randn(2, head.in_channels, FH, FW)
    return head, samples, feats


@pytest.mark.parametrize('distill', sorted(DISTILL))
def test_head_losses_are_float32_under_bf16_autocast(monkeypatch, distill):
    head, samples, feats = _head_and_samples(distill)
    decoded = {}

    def spy_decode(logit):
        out = decode_depth(logit, head.bbox_coder.depth_eps)
        decoded.update(logit=logit.detach(), depth=out.detach())
        return out

    monkeypatch.setattr(head.bbox_coder, 'decode_depth', spy_decode)
    inputs = {}

    def record(module, args, kwargs):
        values = [*args, *kwargs.values()]
        values += [b for a in values if isinstance(a, list) for b in a]  # distillation's boxes
        inputs[module] = [a.dtype for a in values
                          if isinstance(a, torch.Tensor) and a.is_floating_point()]

    losses_of = {name: getattr(head, f'loss_{name}') for name in
                 ('heatmap', 'offset_2d', 'size_2d', 'depth', 'offset_3d', 'size_3d',
                  'heading', 'depth_distill')}
    for module in losses_of.values():
        module.register_forward_pre_hook(record, with_kwargs=True)

    with torch.autocast('cpu', dtype=torch.bfloat16):
        outs = head(feats)
        losses = head.loss_by_feat(outs, samples)
    assert outs['depth'].dtype == torch.bfloat16  # the convolutions did run in bfloat16

    # the decoded depth: float32, and exactly the float32 decode of the same (bf16) logits
    targets = head.get_targets([s.gt_instances_3d for s in samples],
                               [s.gt_instances for s in samples],
                               [s.metainfo for s in samples], (FH, FW))
    logits = gather_at(outs['depth'][:, 0:1], targets['indices'])[..., 0][targets['mask_3d']]
    assert logits.dtype == torch.bfloat16 and logits.numel() == 2  # sample b: random crop
    reference = decode_depth(logits.detach().float(), head.bbox_coder.depth_eps)
    assert decoded['depth'].dtype == torch.float32
    assert torch.equal(decoded['depth'], reference)
    # ... which matters: decoded in bfloat16, the depth map is off by decimetres at ~50 m
    dense = outs['depth'][:, 0].detach()
    dense_ref = decode_depth(dense.float(), head.bbox_coder.depth_eps)
    assert 40 < dense_ref.min() and dense_ref.max() < 65
    low = decode_depth(dense, head.bbox_coder.depth_eps)
    assert low.dtype == torch.bfloat16 and (low.float() - dense_ref).abs().max() > 0.05

    # every loss module got float32 inputs (predictions and targets) and returned float32
    assert set(inputs) == set(losses_of.values())
    for name, module in losses_of.items():
        assert inputs[module] and set(inputs[module]) == {torch.float32}, (name, inputs[module])
    assert {f'loss_{n}' for n in losses_of} <= set(losses)
    for key, value in losses.items():
        assert value.dtype == torch.float32 and torch.isfinite(value), key

    # backward through autocast reaches every branch with finite gradients
    sum(v for k, v in losses.items() if k.startswith('loss_')).backward()
    for name, p in head.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_loss_modules_compute_in_float32_for_low_precision_inputs():
    """The losses cast their own inputs too (used outside the head, e.g. a custom head)."""
    gen = torch.Generator().manual_seed(0)
    cases = {
        'CornerNetFocalLoss': (torch.rand(2, 3, 4, 5, generator=gen).clamp(0.01, 0.99),
                               torch.rand(2, 3, 4, 5, generator=gen).round()),
        'LaplacianAleatoricDepthLoss': (torch.rand(6, generator=gen) * 50,
                                        torch.randn(6, generator=gen),
                                        torch.rand(6, generator=gen) * 50),
        'DimAwareL1Loss': (torch.rand(6, 3, generator=gen) + 1, torch.rand(6, 3, generator=gen)
                           + 1, torch.rand(6, 3, generator=gen) + 1),
        'MultiBinHeadingLoss': (torch.randn(6, 24, generator=gen),
                                torch.randint(0, 12, (6, ), generator=gen),
                                torch.rand(6, generator=gen) - 0.5),
    }
    for name, args in cases.items():
        loss = MODELS.build(dict(type=name))
        pred = args[0].bfloat16()
        low = loss(pred, *args[1:])
        assert low.dtype == torch.float32, name
        # same numbers as the float32 loss of the bf16-rounded prediction
        assert torch.equal(low, loss(pred.float(), *args[1:])), name
