"""ModelComplexityHook / detector_complexity: exact MACs of a known network, nothing changed."""
from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from torch import nn

from monodle_plugin.engine.hooks.model_complexity_hook import (
    ModelComplexityHook,
    pipeline_input_hw,
)
from monodle_plugin.utils.model_complexity import count_parameters, detector_complexity


class ToyDetector(nn.Module):
    """extract_feat: 1x1 conv 3 -> 8 (+ BN); head: 1x1 conv 8 -> 2 (``{'out': map}``)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.bbox_head = nn.Conv2d(8, 2, 1, bias=False)

    def extract_feat(self, inputs: dict) -> torch.Tensor:
        return self.bn(self.conv(inputs['imgs']))


def _toy_macs(h: int, w: int) -> int:
    # two 1x1 convolutions, one MAC per weight per pixel; fvcore counts an affine BatchNorm
    # in eval mode as 2 per element (scale and shift)
    return (3 * 8 + 8 * 2) * h * w + 2 * 8 * h * w


def test_detector_complexity_exact_and_side_effect_free():
    det = ToyDetector().train()
    det.bn.running_mean.fill_(0.5)
    bn_before = det.bn.state_dict()
    rng_before = torch.get_rng_state()
    info = detector_complexity(det, (12, 20))
    assert info['params'] == count_parameters(det) == 3 * 8 + 8 * 2 + 2 * 8
    assert info['gmacs'] * 1e9 == pytest.approx(_toy_macs(12, 20), rel=0.01)
    assert info['input_hw'] == (12, 20)
    assert det.training  # mode restored
    for key, value in det.bn.state_dict().items():
        assert torch.equal(value, bn_before[key]), key  # BN statistics untouched
    assert torch.equal(torch.get_rng_state(), rng_before)


def test_pipeline_input_hw():
    pipe = [dict(type='LoadKittiMonoImage'),
            dict(type='MonoDLEAffineAug', output_size=(640, 192)), dict(type='Pack')]
    assert pipeline_input_hw(pipe) == (192, 640)
    assert pipeline_input_hw([dict(type='LoadKittiMonoImage')]) is None


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _runner(pipeline: list) -> tuple[SimpleNamespace, _Capture]:
    logger = logging.getLogger('test_model_complexity_hook')
    logger.setLevel(logging.INFO)
    capture = _Capture()
    logger.addHandler(capture)
    cfg = Config(dict(train_dataloader=dict(dataset=dict(pipeline=pipeline))))
    return SimpleNamespace(model=ToyDetector(), cfg=cfg, logger=logger), capture


def test_hook_logs_params_and_gmacs_once_from_the_pipeline_size():
    runner, capture = _runner([dict(type='MonoDLEAffineAug', output_size=(40, 16))])
    ModelComplexityHook().before_train(runner)
    assert len(capture.lines) == 1
    line = capture.lines[0]
    assert 'model complexity' in line and '1 x 3 x 16 x 40' in line
    gmacs = float(line.split(' GMACs')[0].split()[-1])
    assert gmacs == pytest.approx(_toy_macs(16, 40) / 1e9, rel=0.01)


def test_hook_explicit_size_and_missing_size_message():
    runner, capture = _runner([dict(type='LoadKittiMonoImage')])
    ModelComplexityHook().before_train(runner)
    assert 'GMACs not computed' in capture.lines[-1]
    assert 'input_size=(W, H)' in capture.lines[-1]
    ModelComplexityHook(input_size=(40, 16)).before_train(runner)
    assert '1 x 3 x 16 x 40' in capture.lines[-1]
    with pytest.raises(ValueError, match='input_size must be'):
        ModelComplexityHook(input_size=(1, 2, 3))


def test_enabled_in_the_base_runtime():
    cfg = Config.fromfile('configs/_base_/default_runtime.py')
    assert cfg.default_hooks.complexity.type == 'ModelComplexityHook'
