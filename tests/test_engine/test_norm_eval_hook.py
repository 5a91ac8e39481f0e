"""NormEvalHook: from its epoch on, BatchNorm trains with frozen running statistics."""
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from monodle_plugin.engine.hooks import NormEvalHook


def _step(model: nn.Module, x: torch.Tensor) -> None:
    model.zero_grad()
    model(x).square().mean().backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= 0.1 * p.grad


@pytest.mark.parametrize('epoch, frozen', [(2, False), (3, True), (4, True)])
def test_batchnorm_statistics_frozen_from_begin_epoch(epoch, frozen):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Sequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)))
    model.train()  # what mmengine's loop does at every epoch start
    runner = SimpleNamespace(epoch=epoch, model=model)
    x = torch.randn(2, 3, 8, 8) * 3 + 1
    stats = [(bn.running_mean.clone(), bn.running_var.clone(), bn.weight.clone())
             for bn in model.modules() if isinstance(bn, nn.BatchNorm2d)]
    NormEvalHook(begin_epoch=3).before_train_iter(runner, 0)
    _step(model, x)
    bns = [bn for bn in model.modules() if isinstance(bn, nn.BatchNorm2d)]
    assert all(bn.training != frozen for bn in bns)
    assert all(m.training for m in model.modules() if not isinstance(m, nn.BatchNorm2d))
    for bn, (mean, var, weight) in zip(bns, stats):
        assert torch.equal(bn.running_mean, mean) == frozen
        assert torch.equal(bn.running_var, var) == frozen
        assert not torch.equal(bn.weight, weight)  # the affine part trains either way
    if frozen:  # the output is the test-time one: eval-mode normalisation
        with torch.no_grad():
            out = model(x)
            model.eval()
            assert torch.equal(out, model(x))


def test_bad_begin_epoch_is_one_line():
    for bad in (-1, 1.5, '3', True):
        with pytest.raises(ValueError, match='NormEvalHook: begin_epoch must be an integer'):
            NormEvalHook(begin_epoch=bad)
