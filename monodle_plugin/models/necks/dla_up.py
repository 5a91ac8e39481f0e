"""MonoDLE's DLAUp neck: iterative deep aggregation of stride 4/8/16/32 features.

mmdet3d's ``DLANeck`` (SMOKE) uses deformable convolutions and a different layout, so it
cannot load MonoDLE's weights; this module reproduces MonoDLE's plain-convolution
``DLAUp``/``IDAUp`` with the same parameter names (``ida_{i}.proj_{j}.conv.weight`` ...).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from mmdet3d.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor, nn


class ConvBNReLU(nn.Module):
    """kxk convolution (no bias) + BatchNorm + ReLU; children named ``conv``/``bn``/``relu``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=1,
                              padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.bn(self.conv(x)))


def fill_bilinear_up_weights(up: nn.ConvTranspose2d) -> None:
    """Initialise a depthwise transposed convolution as bilinear up-sampling (in place)."""
    w = up.weight.data
    k = w.size(2)
    f = math.ceil(k / 2)
    c = (2 * f - 1 - f % 2) / (2.0 * f)
    coords = torch.arange(k, dtype=torch.float64)
    line = 1 - (coords / f - c).abs()
    kernel = (line[:, None] * line[None, :]).to(w.dtype)
    w.copy_(kernel.expand_as(w))


class IDAUp(nn.Module):
    """One iterative-aggregation stage.

    For ``j = 1 .. n-1``: ``x_j = node_j(cat(x_{j-1}, up_j(proj_j(x_j))))``; every output has
    ``out_channels`` channels at the resolution of ``x_0``.

    Args:
        in_channels: channels of the n inputs (finest first).
        up_factors: up-sampling factor of each input relative to the first.
        out_channels: channels of the outputs (= channels of the first input).
    """

    def __init__(self, in_channels: Sequence[int], up_factors: Sequence[int],
                 out_channels: int) -> None:
        super().__init__()
        self.num_inputs = len(in_channels)
        for j in range(1, len(in_channels)):
            factor = int(up_factors[j])
            setattr(self, f'proj_{j}', ConvBNReLU(in_channels[j], out_channels))
            up = nn.ConvTranspose2d(out_channels, out_channels, kernel_size=factor * 2,
                                    stride=factor, padding=factor // 2, output_padding=0,
                                    groups=out_channels, bias=False)
            fill_bilinear_up_weights(up)
            setattr(self, f'up_{j}', up)
            setattr(self, f'node_{j}', ConvBNReLU(out_channels * 2, out_channels))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                m.weight.data.normal_(0, math.sqrt(2.0 / n))
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()

    def forward(self, layers: list[Tensor]) -> list[Tensor]:
        """Aggregate ``layers`` (list of n maps, finest first); returns a new list."""
        if len(layers) != self.num_inputs:
            raise ValueError(f'IDAUp: got {len(layers)} maps, expected {self.num_inputs}')
        layers = list(layers)
        for j in range(1, len(layers)):
            up = getattr(self, f'up_{j}')(getattr(self, f'proj_{j}')(layers[j]))
            layers[j] = getattr(self, f'node_{j}')(torch.cat([layers[j - 1], up], 1))
        return layers


@MODELS.register_module()
class DLAUp(BaseModule):
    """MonoDLE's DLAUp neck.

    Input: the backbone's multi-scale maps; ``in_channels[start_level:]`` are used, each
    twice the stride of the previous one (MonoDLE: strides 4, 8, 16, 32 with 64, 128, 256,
    512 channels). Output: a 1-tuple holding the finest-stride map, (B, in_channels[start],
    H / 4, W / 4) for MonoDLE.

    Args:
        in_channels: channels of every backbone output.
        start_level: index of the first (finest) map to aggregate. Defaults to 0.
        strides: optional strides of ``in_channels[start_level:]`` (e.g. 4, 8, 16, 32), only
            checked: each must be twice the previous one (MonoDLE's 2**i scales).
        init_cfg: mmengine init config. MonoDLE's own initialisation (normal(0, sqrt(2/n))
            convolutions, bilinear up-sampling, unit BatchNorm) is applied at construction,
            so the default is None.
    """

    def __init__(self, in_channels: Sequence[int], start_level: int = 0,
                 strides: Sequence[int] | None = None, init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg)
        channels = [int(c) for c in in_channels[start_level:]]
        if len(channels) < 2:
            raise ValueError(f'DLAUp: need at least two levels, got in_channels={in_channels} '
                             f'with start_level={start_level}')
        if strides is not None:
            strides = [int(s) for s in strides][-len(channels):]
            if len(strides) != len(channels) or any(
                    b != 2 * a for a, b in zip(strides[:-1], strides[1:])):
                raise ValueError(f'DLAUp: strides {strides} must double level to level for '
                                 f'in_channels {channels}')
        self.in_channels = [int(c) for c in in_channels]
        self.start_level = start_level
        self.num_levels = len(channels)
        self.out_channels = channels[0]
        scales = [2 ** i for i in range(len(channels))]
        for i in range(len(channels) - 1):
            j = -i - 2
            self.add_module(f'ida_{i}', IDAUp(channels[j:],
                                              [s // scales[j] for s in scales[j:]],
                                              channels[j]))
            scales[j + 1:] = [scales[j]] * len(scales[j + 1:])
            channels[j + 1:] = [channels[j]] * len(channels[j + 1:])

    def forward(self, feats: Sequence[Tensor]) -> tuple[Tensor]:
        """Aggregate ``feats[start_level:]`` (finest first) into the finest-stride map."""
        layers = list(feats[self.start_level:])
        if len(layers) != self.num_levels:
            raise ValueError(f'DLAUp: got {len(layers)} maps after start_level, '
                             f'expected {self.num_levels}')
        for i in range(self.num_levels - 1):
            layers[-i - 2:] = getattr(self, f'ida_{i}')(layers[-i - 2:])
        return (layers[-1],)
