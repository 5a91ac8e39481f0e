"""The seed system's ``NativeNeck``: YOLO's own P3/P4/P5 (after its PAN) fused to stride 4.

Reproduces ``NativeNeck`` of Puiching-Memory/MonoDDLE (commit 333a438,
``lib/models/centernet3d.py``) with the same parameter names (``laterals.{i}.weight``,
``smooth.{0,1}``, ``upsample_to_stride4.{0,1}``) and the same initialisation, so its weights
load unchanged and the same seed gives the same numbers:

1. a 1x1 convolution (no bias) per input level to ``out_channels`` (the laterals);
2. top-down: from the coarsest level, nearest-upsample and add to the next finer lateral;
3. a 3x3 convolution + BatchNorm + ReLU on the finest (stride-8) sum;
4. one 4x4 stride-2 transposed convolution + BatchNorm + ReLU to stride 4.

Initialisation (as the seed): convolutions normal(0, sqrt(2 / (k * k * out_channels))),
BatchNorm weight 1 / bias 0, and the transposed convolution's ``weight[c, 0]`` (output channel 0
of every input channel) set to the bilinear kernel while the other output channels keep
PyTorch's default initialisation (the seed's loop is written for a depthwise kernel but the
layer is a dense one; kept as it is, so that results stay comparable).

Feed it ``UltralyticsBackbone(..., detect_inputs=True)``: the maps the Ultralytics Detect head
reads, Detect itself never run.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch.nn.functional as F
from mmdet3d.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor, nn


@MODELS.register_module()
class NativeNeck(BaseModule):
    """Top-down fusion of YOLO's P3/P4/P5 into one stride-4 map (the seed's ``NativeNeck``).

    Args:
        in_channels: channels of the input maps, finest first (P3, P4, P5), each level at twice
            the stride of the previous one (e.g. 8, 16, 32).
        out_channels: channels of the laterals and of the output. Defaults to 64 (the seed's
            ``neck_out_channels``).
        init_cfg: mmengine init config; the seed's initialisation is applied at construction,
            so the default is None.

    Shapes: input sequence of (B, in_channels[k], H / s_k, W / s_k) with s = 8, 16, 32;
    output 1-tuple of (B, out_channels, H / 4, W / 4).
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int = 64,
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg)
        self.in_channels = [int(c) for c in in_channels]
        if len(self.in_channels) < 1:
            raise ValueError('NativeNeck: in_channels must name at least one level')
        self.out_channels = int(out_channels)
        self.laterals = nn.ModuleList(
            [nn.Conv2d(ch, self.out_channels, 1, bias=False) for ch in self.in_channels])
        self.smooth = nn.Sequential(
            nn.Conv2d(self.out_channels, self.out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(self.out_channels),
            nn.ReLU(inplace=True),
        )
        self.upsample_to_stride4 = nn.Sequential(
            nn.ConvTranspose2d(self.out_channels, self.out_channels, 4, stride=2, padding=1,
                               bias=False),
            nn.BatchNorm2d(self.out_channels),
            nn.ReLU(inplace=True),
        )
        self._seed_init()

    def _seed_init(self) -> None:
        """The seed's ``_init_weights`` (same order of random draws: module order)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                m.weight.data.normal_(0, math.sqrt(2.0 / n))
            elif isinstance(m, nn.ConvTranspose2d):
                w = m.weight.data
                f = math.ceil(w.size(2) / 2)
                c = (2 * f - 1 - f % 2) / (2.0 * f)
                for i in range(w.size(2)):
                    for j in range(w.size(3)):
                        w[0, 0, i, j] = (1 - math.fabs(i / f - c)) * (1 - math.fabs(j / f - c))
                for ch in range(1, w.size(0)):
                    w[ch, 0, :, :] = w[0, 0, :, :]
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()

    def forward(self, feats: Sequence[Tensor]) -> tuple[Tensor]:
        """P3, P4, P5 (finest first) -> (stride-4 map,)."""
        if len(feats) != len(self.laterals):
            raise ValueError(f'NativeNeck: got {len(feats)} maps, expected '
                             f'{len(self.laterals)} (in_channels={self.in_channels})')
        lats = [lat(f) for lat, f in zip(self.laterals, feats)]
        for i in range(len(lats) - 2, -1, -1):
            lats[i] = lats[i] + F.interpolate(lats[i + 1], size=lats[i].shape[2:],
                                              mode='nearest')
        return (self.upsample_to_stride4(self.smooth(lats[0])),)
