"""Model size and cost: parameters and MACs of a MonoDLE detector (one home for the numbers
that ``tools/benchmark.py`` tabulates and ``ModelComplexityHook`` logs at the start of training).

MACs are counted by ``mmengine.analysis.FlopAnalyzer`` (fvcore convention: one multiply-add
is one "flop", so its total is MACs) on one traced forward of the network: backbone + neck +
head raw maps, as the official ``CenterNet3D.forward`` (no preprocessing, decoding or NMS).
"""
from __future__ import annotations

import torch
from torch import nn


class HeadForward(nn.Module):
    """Image tensor (B, 3, H, W) -> tuple of the head's raw maps (backbone, neck, head)."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, img: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feats = self.detector.extract_feat({'imgs': img})
        out = self.detector.bbox_head(feats)
        return tuple(out.values()) if isinstance(out, dict) else tuple(out)


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable or not) of ``model``."""
    return sum(p.numel() for p in model.parameters())


def count_macs(net: nn.Module, x: torch.Tensor) -> tuple[float, dict[str, float]]:
    """Total MACs and MACs per top-level module of ``net(x)`` (mmengine FlopAnalyzer).

    Args:
        net: a module whose forward takes the single tensor ``x`` (e.g. :class:`HeadForward`).
        x: (B, 3, H, W) input.

    Returns:
        (total MACs, {module name: MACs}); the caller sets eval mode (a forward in train mode
        would update BatchNorm statistics).
    """
    from mmengine.analysis import FlopAnalyzer
    analyzer = FlopAnalyzer(net, (x, ))
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    analyzer.tracer_warnings('none')
    with torch.no_grad():
        total = analyzer.total()
    return float(total), {k: float(v) for k, v in analyzer.by_module().items()}


def detector_complexity(detector: nn.Module, input_hw: tuple[int, int]) -> dict[str, float]:
    """Parameters and GMACs of a detector for one (1, 3, H, W) zero image.

    The detector is put in eval mode for the traced forward and restored afterwards, with no
    gradient and no random draw, so calling this changes neither the weights, the BatchNorm
    statistics nor any random state.

    Args:
        detector: a MonoDLE detector (``extract_feat`` + ``bbox_head``).
        input_hw: (H, W) of the network input, pixels.

    Returns:
        dict ``params`` (count), ``gmacs`` (1e9 multiply-adds), ``input_hw``.
    """
    was_training = detector.training
    param = next(detector.parameters(), None)
    device = param.device if param is not None else torch.device('cpu')
    x = torch.zeros(1, 3, int(input_hw[0]), int(input_hw[1]), device=device)
    detector.eval()
    try:
        macs, _ = count_macs(HeadForward(detector), x)
    finally:
        detector.train(was_training)
    return dict(params=count_parameters(detector), gmacs=macs / 1e9,
                input_hw=(int(input_hw[0]), int(input_hw[1])))
