"""UltralyticsBackbone: feature picks per family, offline weights, freezing, head removal."""
import time

import pytest
import torch
from kitti_mini_training import ROOT, train_steps_on_kitti_mini
from mmdet3d.registry import MODELS
from torch import nn

import monodle_plugin  # noqa: F401  (registers)
from monodle_plugin.models.backbones import ultralytics_backbone as ub
from monodle_plugin.models.backbones.ultralytics_backbone import UltralyticsBackbone

# Independent reference: the layer indices / channels read off the Ultralytics model yamls
# (v8: C2f 2, P3 15, P4 18, P5 21; 11 and 26: C3k2 2, P3 16, P4 19, P5 22), n scale.
EXPECTED = {
    'yolo8': ([2, 15, 18, 21], [32, 64, 128, 256]),
    'yolo11': ([2, 16, 19, 22], [64, 64, 128, 256]),
    'yolo26': ([2, 16, 19, 22], [64, 64, 128, 256]),
}


@pytest.fixture
def no_download(monkeypatch, tmp_path):
    """Any download attempt fails the test; Ultralytics' weights_dir points to an empty dir."""
    import ultralytics.utils
    import ultralytics.utils.downloads as downloads

    def forbidden(*args, **kwargs):
        raise AssertionError(f'download attempted: {args} {kwargs}')

    monkeypatch.setattr(downloads, 'safe_download', forbidden)
    monkeypatch.setattr(ultralytics.utils, 'SETTINGS', {'weights_dir': str(tmp_path / 'ul')})
    monkeypatch.delenv(ub.WEIGHTS_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)


def _saved_pt(tmp_path, yaml_name='yolov8n.yaml', name='saved_yolov8n.pt'):
    """A checkpoint written by Ultralytics itself (fp16 weights, requires_grad=False)."""
    from ultralytics import YOLO
    torch.manual_seed(0)
    path = tmp_path / name
    YOLO(yaml_name).save(str(path))
    return path


@pytest.mark.parametrize('keyword', list(EXPECTED))
def test_keyword_builds_four_maps(keyword):
    backbone = MODELS.build(dict(type='UltralyticsBackbone', ultralytics_model=keyword,
                                 pretrained=False)).eval()
    indices, channels = EXPECTED[keyword]
    assert backbone.feature_indices == indices
    assert backbone.out_channels == channels
    assert backbone.strides == [4, 8, 16, 32]
    with torch.no_grad():
        feats = backbone(torch.rand(1, 3, 384, 1280))
    assert [tuple(f.shape) for f in feats] == [
        (1, c, 384 // s, 1280 // s) for c, s in zip(channels, (4, 8, 16, 32))]


def test_infer_out_channels_matches_build():
    assert UltralyticsBackbone.infer_out_channels('yolo11') == EXPECTED['yolo11'][1]
    assert UltralyticsBackbone.infer_out_channels(
        'yolov8s.yaml', feature_strides=[8, 16, 32]) == [128, 256, 512]


def test_detect_head_removed():
    from ultralytics.nn.modules.head import Detect
    from ultralytics.nn.tasks import DetectionModel
    backbone = UltralyticsBackbone('yolo8', pretrained=False)
    full = DetectionModel('yolov8n.yaml', verbose=False)
    assert not any(isinstance(m, Detect) for m in backbone.modules())
    assert len(backbone.model) == 22  # layers 0..21; 22 is Detect
    n_kept = sum(p.numel() for p in full.model[:22].parameters())
    assert sum(p.numel() for p in backbone.parameters()) == n_kept
    assert n_kept < sum(p.numel() for p in full.parameters())


def test_fewer_strides_drop_unread_layers():
    backbone = UltralyticsBackbone('yolo8', pretrained=False, feature_strides=[4, 8])
    assert backbone.feature_indices == [2, 15]
    assert len(backbone.model) == 16
    feats = backbone.eval()(torch.rand(1, 3, 64, 96))
    assert [f.shape[-1] for f in feats] == [24, 12]


def test_feature_indices_override_and_bad_values():
    backbone = UltralyticsBackbone('yolo8', pretrained=False, feature_indices=[4, 6, 9])
    assert backbone.strides == [8, 16, 32]
    assert backbone.out_channels == [64, 128, 256]
    with pytest.raises(ValueError, match='feature_indices'):
        UltralyticsBackbone('yolo8', pretrained=False, feature_indices=[22])
    with pytest.raises(ValueError, match='stride 64'):
        UltralyticsBackbone('yolo8', pretrained=False, feature_strides=[4, 64])


def test_input_not_multiple_of_32_is_an_error():
    backbone = UltralyticsBackbone('yolo8', pretrained=False).eval()
    with pytest.raises(ValueError, match='multiple of 32'):
        backbone(torch.rand(1, 3, 64, 100))


def test_saved_pt_loads_with_identical_features(tmp_path, no_download):
    """Our layer runner equals Ultralytics' own forward on a model loaded from the same file."""
    from ultralytics import YOLO
    path = _saved_pt(tmp_path)
    # pretrained=True: weights from the file; NCHW as Ultralytics runs, for bit equality
    backbone = UltralyticsBackbone(str(path), channels_last_inference=False)
    assert backbone.training
    assert all(p.requires_grad for p in backbone.parameters())  # file stores False

    reference = YOLO(str(path)).model.float().eval()
    ref_sd = reference.state_dict()
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, ref_sd[key]), key
    captured = {}
    for i in backbone.feature_indices:
        reference.model[i].register_forward_hook(
            lambda m, args, out, i=i: captured.__setitem__(i, out))
    x = torch.rand(1, 3, 64, 160)
    with torch.no_grad():
        reference(x)
        feats = backbone.eval()(x)
    for feat, i in zip(feats, backbone.feature_indices):
        assert torch.equal(feat, captured[i])


def test_pt_found_through_env_dir(tmp_path, no_download, monkeypatch):
    path = _saved_pt(tmp_path, 'yolo11n.yaml', 'yolo11n.pt')
    weights = tmp_path / 'weights'
    weights.mkdir()
    path.rename(weights / 'yolo11n.pt')
    monkeypatch.setenv(ub.WEIGHTS_DIR_ENV, str(weights))
    assert UltralyticsBackbone('yolo11').out_channels == EXPECTED['yolo11'][1]


def test_missing_default_weights_fail_fast(no_download):
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError) as err:
        UltralyticsBackbone('yolo26')  # pretrained=True by default; no yolo26n.pt anywhere
    assert time.perf_counter() - start < 5
    msg = str(err.value)
    assert 'yolo26n.pt' in msg and 'checkpoints' in msg and ub.WEIGHTS_DIR_ENV in msg
    assert 'pretrained=False' in msg


def test_url_is_refused():
    with pytest.raises(ValueError, match='never downloaded'):
        UltralyticsBackbone('https://example.com/yolov8n.pt')


def _bn_stats(module):
    return [t.clone() for m in module.modules() if isinstance(m, nn.BatchNorm2d)
            for t in (m.running_mean, m.running_var)]


@pytest.mark.parametrize('freeze', [True, False])
def test_freeze_backbone(freeze):
    backbone = UltralyticsBackbone('yolo8', pretrained=False, freeze_backbone=freeze)
    backbone.train()
    before = _bn_stats(backbone)
    feats = backbone(torch.rand(2, 3, 64, 96))
    head = nn.Conv2d(feats[0].shape[1], 1, 1)  # something trainable downstream
    (head(feats[0]).sum() + sum(f.sum() for f in feats[1:])).backward()
    after = _bn_stats(backbone)
    stats_unchanged = all(torch.equal(a, b) for a, b in zip(before, after))
    grads = [p.grad for p in backbone.parameters()]
    if freeze:
        assert all(g is None for g in grads)
        assert stats_unchanged
        assert not any(p.requires_grad for p in backbone.parameters())
        assert head.weight.grad is not None
    else:  # the control: the same run updates both
        assert all(g is not None for g in grads)
        assert not stats_unchanged


# ----------------------------------------------------------------------------- ablation configs
SMALL = (320, 96)  # (W, H) network input for speed; strides 4..32 still divide it


@pytest.mark.parametrize('da3', [False, True], ids=['baseline', 'da3'])
@pytest.mark.parametrize('version', list(EXPECTED))
def test_ablation_config_trains_on_kitti_mini(version, da3):
    """Three optimiser steps of configs/ablation/monodle_<version>[_da3]_kitti.py on kitti_mini
    (the +DA3 configs with kitti_mini's LiDAR depth standing in for DA3 pseudo-labels)."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    name = f'monodle_{version}_da3_kitti.py' if da3 else f'monodle_{version}_kitti.py'
    from monodle_plugin.utils.distill_switches import apply_distill_switches
    cfg = Config.fromfile(str(ROOT / 'configs' / 'ablation' / name))
    apply_distill_switches(cfg)  # the +DA3 pieces, as MonoDLERunner expands them
    init_default_scope(cfg.default_scope)
    assert cfg.model.backbone.ultralytics_model == version
    assert list(cfg.model.neck.in_channels) == EXPECTED[version][1]  # derived, not typed
    history = train_steps_on_kitti_mini(cfg, SMALL, da3, batch_size=2)
    for losses in history:
        assert set(losses) >= {'loss_heatmap', 'loss_depth', 'loss_size_3d'}


def test_channels_last_inference_same_numbers():
    backbone = UltralyticsBackbone('yolo8', pretrained=False)
    x = torch.rand(1, 3, 64, 96)
    backbone.eval()
    with torch.no_grad():
        fast = backbone(x)
        backbone.channels_last_inference = False
        plain = backbone(x)
    assert all(f.is_contiguous(memory_format=torch.channels_last) for f in fast)
    assert all(p.is_contiguous() for p in plain)
    for f, p in zip(fast, plain):
        torch.testing.assert_close(f, p, rtol=1e-5, atol=1e-5)
    backbone.channels_last_inference = True
    assert all(f.is_contiguous() for f in backbone.train()(torch.rand(2, 3, 64, 96)))


def test_yaml_builds_random_init_and_says_so():
    with pytest.warns(UserWarning, match='random initialisation'):
        backbone = UltralyticsBackbone('yolov8s.yaml')  # pretrained=True does not apply
    assert backbone.out_channels == [64, 128, 256, 512]
    with pytest.raises(FileNotFoundError, match='not found'):
        UltralyticsBackbone('no_such_model.yaml', pretrained=False)


def test_ultralytics_process_wide_patches_are_undone():
    """Building a YOLO backbone leaves PIL.Image.open and torch.save as PIL / torch define them:
    ultralytics' replacements pip-install pi-heif on an unidentifiable image (network at run
    time) and retry saves with sleeps."""
    import io

    import PIL.Image
    from ultralytics.utils import patches  # applies the patches (if not done yet)

    UltralyticsBackbone(ultralytics_model='yolov8n.yaml', pretrained=False)
    assert PIL.Image.open is patches._image_open and PIL.Image.open.__module__ == 'PIL.Image'
    assert torch.save is patches._torch_save
    with pytest.raises(PIL.UnidentifiedImageError):  # PIL's own error, no install attempt
        PIL.Image.open(io.BytesIO(b'not an image at all'))
