"""Transcription of the seed system's model (MonoDDLE commit ca005eb): ``CenterNet3D`` with an
Ultralytics YOLO backbone (``UltralyticsBackboneAdapter``), the DLAUp neck, the seven branches
and the optional ``dense_depth_uncertainty`` branch (``model.use_distill_uncertainty``).

Test material only: it builds the seed's module tree (hence its state-dict key names) and runs
its forward, so that converted checkpoints can be compared output for output. Sources:
lib/models/centernet3d.py, lib/backbones/ultralytics_adapter.py, lib/backbones/dlaup.py.
Weights are random (``DetectionModel`` from a yaml; nothing is downloaded).

DLA-34 key names: the seed's DLA-34 is official MonoDLE's (``lib/backbones/dla.py``), whose
``model_state`` names are those of mmdet3d's ``DLANet`` with ``bn*`` for ``norm*``;
:func:`seed_dla34_state_dict` writes them from a plugin state dict.
"""
from __future__ import annotations

import math
import re

import numpy as np
import torch
import torch.nn as nn

HEADS = {'heatmap': 3, 'offset_2d': 2, 'size_2d': 2, 'depth': 2, 'offset_3d': 2, 'size_3d': 3,
         'heading': 24}


def _extract_tensor(x):
    if torch.is_tensor(x):
        return x
    if isinstance(x, (list, tuple)):
        for item in x:
            if torch.is_tensor(item):
                return item
    return None


class UltralyticsBackboneAdapter(nn.Module):
    """The seed's adapter: the whole Ultralytics model runs, features are taken by hooks."""

    def __init__(self, yolo_model: nn.Module, feature_indices):
        super().__init__()
        self.model = yolo_model
        self.feature_indices = list(feature_indices)
        self._feature_cache = {}
        for idx in self.feature_indices:
            self.model.model[idx].register_forward_hook(
                lambda _, __, out, i=idx: self._feature_cache.__setitem__(i,
                                                                          _extract_tensor(out)))

    def forward(self, x):
        self._feature_cache = {}
        _ = self.model(x)
        return [self._feature_cache[idx] for idx in self.feature_indices]


class Conv2d(nn.Module):
    def __init__(self, in_planes, out_planes, kernal_szie=3, stride=1, bias=True):
        super().__init__()
        self.conv = nn.Conv2d(in_planes, out_planes, kernel_size=kernal_szie, stride=stride,
                              padding=kernal_szie // 2, bias=bias)
        self.bn = nn.BatchNorm2d(out_planes)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


class IDAUp(nn.Module):
    def __init__(self, in_channels_list, up_factors_list, out_channels):
        super().__init__()
        self.in_channels_list = in_channels_list
        for i in range(1, len(in_channels_list)):
            up_factors = int(up_factors_list[i])
            proj = Conv2d(in_channels_list[i], out_channels, kernal_szie=3, stride=1, bias=False)
            node = Conv2d(out_channels * 2, out_channels, kernal_szie=3, stride=1, bias=False)
            up = nn.ConvTranspose2d(out_channels, out_channels, kernel_size=up_factors * 2,
                                    stride=up_factors, padding=up_factors // 2,
                                    output_padding=0, groups=out_channels, bias=False)
            setattr(self, 'proj_' + str(i), proj)
            setattr(self, 'up_' + str(i), up)
            setattr(self, 'node_' + str(i), node)

    def forward(self, layers):
        for i in range(1, len(layers)):
            upsample = getattr(self, 'up_' + str(i))
            project = getattr(self, 'proj_' + str(i))
            node = getattr(self, 'node_' + str(i))
            layers[i] = upsample(project(layers[i]))
            layers[i] = node(torch.cat([layers[i - 1], layers[i]], 1))
        return layers


class DLAUp(nn.Module):
    def __init__(self, in_channels_list, scales_list=(1, 2, 4, 8, 16)):
        super().__init__()
        scales_list = np.array(scales_list, dtype=int)
        in_channels_list = list(in_channels_list)
        for i in range(len(in_channels_list) - 1):
            j = -i - 2
            setattr(self, f'ida_{i}',
                    IDAUp(in_channels_list=in_channels_list[j:],
                          up_factors_list=scales_list[j:] // scales_list[j],
                          out_channels=in_channels_list[j]))
            scales_list[j + 1:] = scales_list[j]
            in_channels_list[j + 1:] = [in_channels_list[j] for _ in in_channels_list[j + 1:]]

    def forward(self, layers):
        layers = list(layers)
        for i in range(len(layers) - 1):
            ida = getattr(self, f'ida_{i}')
            layers[-i - 2:] = ida(layers[-i - 2:])
        return layers[-1]


class SeedCenterNet3DYolo(nn.Module):
    """``CenterNet3D(backbone='yolov8', neck='DLAUp', model_cfg=...)`` of the seed."""

    def __init__(self, yolo_model: nn.Module, feature_indices, channels,
                 use_distill_uncertainty: bool = False):
        super().__init__()
        self.use_distill_uncertainty = use_distill_uncertainty
        self.backbone = UltralyticsBackboneAdapter(yolo_model, feature_indices)
        self.first_level = 0
        scales = [2 ** i for i in range(len(channels))]
        self.neck = DLAUp(channels, scales_list=scales)
        head_in_channels = channels[self.first_level]
        for head, out in HEADS.items():
            setattr(self, head, nn.Sequential(
                nn.Conv2d(head_in_channels, 256, kernel_size=3, padding=1, bias=True),
                nn.ReLU(inplace=True),
                nn.Conv2d(256, out, kernel_size=1, stride=1, padding=0, bias=True)))
        if use_distill_uncertainty:
            self.dense_depth_uncertainty = nn.Sequential(
                nn.Conv2d(head_in_channels, 256, kernel_size=3, padding=1, bias=True),
                nn.ReLU(inplace=True),
                nn.Conv2d(256, 1, kernel_size=1, stride=1, padding=0, bias=True))

    def forward(self, x):
        feat = self.neck(self.backbone(x)[self.first_level:])
        ret = {head: getattr(self, head)(feat) for head in HEADS}
        if self.use_distill_uncertainty:
            ret['dense_depth_uncertainty'] = self.dense_depth_uncertainty(feat)
        return ret


@torch.no_grad()
def randomise(model: nn.Module, seed: int = 0) -> None:
    """Random values for every parameter and BatchNorm statistic (a wrong mapping cannot hide
    behind equal initial values); scales keep activations finite."""
    gen = torch.Generator().manual_seed(seed)
    for mod in model.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            n = mod.num_features
            mod.weight.copy_(torch.rand(n, generator=gen) + 0.5)
            mod.bias.copy_(torch.randn(n, generator=gen) * 0.1)
            mod.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
            mod.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
        elif isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d)):
            fan_in = mod.weight[0].numel()
            mod.weight.copy_(torch.randn(mod.weight.shape, generator=gen) / math.sqrt(fan_in))
            if mod.bias is not None:
                mod.bias.copy_(torch.randn(mod.bias.shape, generator=gen) * 0.1)


def seed_dla34_state_dict(plugin_state: dict, uncertainty: bool = False,
                          seed: int = 0) -> dict:
    """A seed / official DLA-34 ``model_state`` (random values): the plugin's names with the
    DLA BatchNorms called ``bn*``, top-level branches, the ImageNet ``fc`` and, optionally, the
    ``dense_depth_uncertainty`` branch (3x3 conv 64 -> 256, ReLU, 1x1 conv 256 -> 1)."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for key, value in plugin_state.items():
        name = key[len('bbox_head.'):] if key.startswith('bbox_head.') else key
        if name.startswith('dense_depth_uncertainty.') and not uncertainty:
            continue
        if name.startswith('backbone.'):
            name = re.sub(r'\.norm(\d)\.', r'.bn\1.', name).replace('.root.norm.', '.root.bn.')
        out[name] = (torch.randn(value.shape, generator=gen) if value.is_floating_point()
                     else value.clone())
    out['backbone.fc.weight'] = torch.randn(1000, 512, 1, 1, generator=gen)
    out['backbone.fc.bias'] = torch.randn(1000, generator=gen)
    if uncertainty and 'dense_depth_uncertainty.0.weight' not in out:
        out['dense_depth_uncertainty.0.weight'] = torch.randn(256, 64, 3, 3, generator=gen)
        out['dense_depth_uncertainty.0.bias'] = torch.randn(256, generator=gen)
        out['dense_depth_uncertainty.2.weight'] = torch.randn(1, 256, 1, 1, generator=gen)
        out['dense_depth_uncertainty.2.bias'] = torch.randn(1, generator=gen)
    return out
