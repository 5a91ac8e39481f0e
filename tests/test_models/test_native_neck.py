"""NativeNeck + UltralyticsBackbone(detect_inputs=True) equal the seed system's NativeNeck path.

The reference below is a transcription of Puiching-Memory/MonoDDLE at commit 333a438:
``NativeNeck`` from ``lib/models/centernet3d.py`` (verbatim) and the feature extraction of
``UltralyticsBackboneAdapter`` (``lib/backbones/ultralytics_adapter.py``: the full Ultralytics
model is run, Detect included, and the outputs of the last layers at strides 8/16/32 are
captured with forward hooks), which ``CenterNet3D`` builds with ``feature_strides=[8, 16, 32]``
when ``neck == 'NativeNeck'``.
"""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet3d.registry import MODELS

import monodle_plugin  # noqa: F401  (registers)
from monodle_plugin.models.backbones.ultralytics_backbone import UltralyticsBackbone
from monodle_plugin.models.necks import NativeNeck


# ------------------------------------------------------------------ transcription (seed 333a438)
class SeedNativeNeck(nn.Module):
    """Top-down FPN that fuses P3/P4/P5 neck features into a stride-4 map."""

    def __init__(self, in_channels_list, out_channels=64):
        super().__init__()
        self.laterals = nn.ModuleList(
            [nn.Conv2d(ch, out_channels, 1, bias=False) for ch in in_channels_list]
        )
        self.smooth = nn.Sequential(
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )
        self.upsample_to_stride4 = nn.Sequential(
            nn.ConvTranspose2d(out_channels, out_channels, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )
        self.out_channels = out_channels
        self._init_weights()

    def _init_weights(self):
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

    def forward(self, features):
        """features: list of [P3(stride8), P4(stride16), P5(stride32)]."""
        lats = [lat(f) for lat, f in zip(self.laterals, features)]
        for i in range(len(lats) - 2, -1, -1):
            lats[i] = lats[i] + F.interpolate(
                lats[i + 1], size=lats[i].shape[2:], mode="nearest"
            )
        return self.upsample_to_stride4(self.smooth(lats[0]))


def _extract_tensor(x):
    if torch.is_tensor(x):
        return x
    if isinstance(x, (list, tuple)):
        for item in x:
            if torch.is_tensor(item):
                return item
    return None


class SeedAdapter(nn.Module):
    """UltralyticsBackboneAdapter's feature path (inference of indices + hooked full forward)."""

    def __init__(self, model, feature_strides=(8, 16, 32)):
        super().__init__()
        self.model = model
        self.feature_strides = list(feature_strides)
        layer_outputs = {}
        hooks = [layer.register_forward_hook(
            lambda _, __, out, i=idx: layer_outputs.__setitem__(i, _extract_tensor(out)))
            for idx, layer in enumerate(self.model.model)]
        dummy = torch.zeros(1, 3, 384, 1280)
        training = self.model.training
        self.model.eval()
        with torch.no_grad():
            self.model(dummy)
        self.model.train(training)
        for h in hooks:
            h.remove()
        candidates = {}
        for idx, feat in layer_outputs.items():
            if feat is None or feat.dim() != 4:
                continue
            sh = int(round(dummy.shape[-2] / feat.shape[-2]))
            sw = int(round(dummy.shape[-1] / feat.shape[-1]))
            if sh == sw and sh in self.feature_strides:
                candidates.setdefault(sh, []).append((idx, feat.shape[1]))
        self.feature_indices = [candidates[s][-1][0] for s in self.feature_strides]
        self.channels = [candidates[s][-1][1] for s in self.feature_strides]
        self._cache = {}
        for idx in self.feature_indices:
            self.model.model[idx].register_forward_hook(
                lambda _, __, out, i=idx: self._cache.__setitem__(i, _extract_tensor(out)))

    def forward(self, x):
        self._cache = {}
        self.model(x)
        return [self._cache[i] for i in self.feature_indices]


# ------------------------------------------------------------------------------------- tests
def _ultralytics_model(yaml_name):
    from ultralytics.nn.tasks import DetectionModel
    torch.manual_seed(0)
    model = DetectionModel(yaml_name, verbose=False)
    # non-trivial BN statistics so that eval-mode numbers depend on them
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model


@pytest.mark.parametrize('yaml_name,indices', [
    ('yolov8n.yaml', [15, 18, 21]),
    ('yolo11n.yaml', [16, 19, 22]),
    ('yolo26n.yaml', [16, 19, 22]),
])
def test_native_path_equals_seed(yaml_name, indices):
    """Same Ultralytics weights, same neck seed, same input: init and outputs agree (1e-5)."""
    full = _ultralytics_model(yaml_name)
    ours_bb = UltralyticsBackbone(yaml_name, pretrained=False, detect_inputs=True,
                                  feature_strides=[8, 16, 32], channels_last_inference=False)
    missing, unexpected = ours_bb.load_state_dict(
        {k: v for k, v in full.state_dict().items()
         if int(k.split('.')[1]) < len(ours_bb.model)}, strict=True)
    assert not missing and not unexpected
    seed_bb = SeedAdapter(full)
    assert ours_bb.feature_indices == seed_bb.feature_indices == indices
    assert ours_bb.out_channels == seed_bb.channels

    torch.manual_seed(1)
    seed_neck = SeedNativeNeck(seed_bb.channels, out_channels=64)
    torch.manual_seed(1)
    neck = MODELS.build(dict(type='NativeNeck', in_channels=ours_bb.out_channels,
                             out_channels=64))
    seed_sd = seed_neck.state_dict()
    assert list(neck.state_dict()) == list(seed_sd)  # same names: seed weights load as they are
    for key, value in neck.state_dict().items():
        assert torch.equal(value, seed_sd[key]), key  # same initialisation, draw for draw

    x = torch.rand(2, 3, 96, 320)
    for train in (False, True):
        for m in (full, ours_bb, seed_neck, neck):
            m.train(train)
        with torch.no_grad():
            ref = seed_neck(seed_bb(x))
            out, = neck(ours_bb(x))
        assert out.shape == (2, 64, 24, 80)
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_detect_inputs_option_checks():
    bb = UltralyticsBackbone('yolo8', pretrained=False, detect_inputs=True, feature_strides=None)
    assert bb.feature_indices == [15, 18, 21] and bb.strides == [8, 16, 32]
    assert bb.out_channels == [64, 128, 256]
    assert len(bb.model) == 22  # Detect (22) dropped
    with pytest.raises(ValueError, match=r'feature_strides=\[8, 16, 32\]'):
        UltralyticsBackbone('yolo8', pretrained=False, detect_inputs=True)  # default 4..32
    with pytest.raises(ValueError, match='not both'):
        UltralyticsBackbone('yolo8', pretrained=False, detect_inputs=True,
                            feature_strides=None, feature_indices=[15, 18, 21])


def test_neck_rejects_wrong_number_of_maps():
    neck = NativeNeck([64, 128, 256])
    with pytest.raises(ValueError, match='expected 3'):
        neck([torch.rand(1, 64, 8, 8), torch.rand(1, 128, 4, 4)])
