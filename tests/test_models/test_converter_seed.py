"""The converter on the seed system's checkpoints (MonoDDLE ``model_state``): DLA-34 and YOLO
backbones, with and without the ``dense_depth_uncertainty`` branch; layout detected from the
keys or given by ``--source``; strict load; refusal of partial conversions; and, for YOLOv8
(whose seed architecture is cheap to build, tests/test_models/seed_centernet3d.py), the raw head
outputs of the converted model equal the seed model's to 1e-5 on the same input."""
from pathlib import Path

import pytest
import torch
from seed_centernet3d import SeedCenterNet3DYolo, randomise, seed_dla34_state_dict

REPO = Path(__file__).resolve().parents[1].parent
DLA_CONFIG = str(REPO / 'configs/monodle/monodle_dla34_kitti.py')
YOLO_CONFIG = str(REPO / 'configs/ablation/monodle_yolo8_kitti.py')
YOLO_U_CONFIG = str(REPO / 'configs/ablation/monodle_yolo8_da3u_kitti.py')
DLA_U_CONFIG = str(REPO / 'configs/monodle/monodle_dla34_da3u_kitti.py')
UNC_KEYS = {'dense_depth_uncertainty.0.weight': (256, 64, 3, 3),
            'dense_depth_uncertainty.0.bias': (256, ),
            'dense_depth_uncertainty.2.weight': (1, 256, 1, 1),
            'dense_depth_uncertainty.2.bias': (1, )}

torch.set_num_threads(1)


@pytest.fixture(scope='module')
def conv():
    from monodle_plugin.models.utils import official_checkpoint
    return official_checkpoint


def convert_main(argv):
    """tools/convert_monodle_checkpoint.py's body."""
    from monodle_plugin.commands.convert_monodle_checkpoint import main
    return main(argv)


@pytest.fixture(scope='module')
def dla_state(conv):
    return conv.build_expected(DLA_CONFIG)


@pytest.fixture(scope='module')
def yolo_expected(conv):
    return conv.build_expected(YOLO_CONFIG)


def build_plugin(config: str):
    from mmdet3d.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import monodle_plugin  # noqa: F401
    from monodle_plugin.utils.distill_switches import apply_distill_switches
    cfg = Config.fromfile(config)
    apply_distill_switches(cfg)  # +DA3+U: the head's uncertainty branch
    init_default_scope('mmdet3d')
    if cfg.model.backbone.type == 'UltralyticsBackbone':
        cfg.model.backbone.pretrained = False
    return MODELS.build(cfg.model)


@pytest.fixture(scope='module')
def seed_yolo():
    """The seed's CenterNet3D('yolov8', neck='DLAUp') with random weights (yolov8n.yaml)."""
    from ultralytics.nn.tasks import DetectionModel
    torch.manual_seed(0)
    yolo = DetectionModel('yolov8n.yaml', verbose=False)
    model = SeedCenterNet3DYolo(yolo, feature_indices=[2, 15, 18, 21],
                                channels=[32, 64, 128, 256], use_distill_uncertainty=True)
    randomise(model, seed=1)
    return model.eval()


def save_seed(path, state):
    torch.save({'epoch': 140, 'model_state': state, 'optimizer_state': None}, path)


def test_detect_source(conv, dla_state, seed_yolo):
    dla = seed_dla34_state_dict(dla_state)
    assert conv.detect_source(dla) == dict(backbone='dla34', uncertainty=False, neck='DLAUp')
    assert conv.detect_source(seed_dla34_state_dict(dla_state, uncertainty=True))['uncertainty']
    assert conv.detect_source(seed_yolo.state_dict()) == dict(backbone='yolo', uncertainty=True,
                                                              neck='DLAUp')
    ddp = {f'module.{k}': v for k, v in seed_yolo.state_dict().items()}
    assert conv.detect_source(ddp)['backbone'] == 'yolo'
    with pytest.raises(conv.ConversionError, match='--source'):
        conv.detect_source({'encoder.conv.weight': torch.zeros(1)})


def test_seed_dla34_without_config_uses_detected_variant(conv, dla_state, tmp_path, capsys):
    src, dst = tmp_path / 'checkpoint_epoch_140.pth', tmp_path / 'out.pth'
    seed = seed_dla34_state_dict(dla_state)
    save_seed(src, seed)
    assert convert_main([str(src), str(dst)]) == 0
    assert 'dla34 -> configs/monodle/monodle_dla34_kitti.py' in capsys.readouterr().out
    state = torch.load(dst, map_location='cpu', weights_only=True)['state_dict']
    model = build_plugin(DLA_CONFIG)
    model.load_state_dict(state, strict=True)
    torch.testing.assert_close(model.state_dict()['backbone.level5.tree2.norm2.running_var'],
                               seed['backbone.level5.tree2.bn2.running_var'])


def test_seed_dla34_uncertainty_branch_maps(conv, dla_state):
    """The uncertainty branch becomes bbox_head.dense_depth_uncertainty.*; converting into a
    model without the branch is refused (no partial conversion)."""
    seed = seed_dla34_state_dict(dla_state, uncertainty=True)
    assert {k: tuple(seed[k].shape) for k in UNC_KEYS} == UNC_KEYS
    expected = dict(dla_state)
    expected.update({f'bbox_head.{k}': torch.zeros(s) for k, s in UNC_KEYS.items()})
    out = conv.convert_state_dict(seed, expected)
    torch.testing.assert_close(out['bbox_head.dense_depth_uncertainty.0.weight'],
                               seed['dense_depth_uncertainty.0.weight'])
    with pytest.raises(conv.ConversionError,
                       match='unexpected key .*bbox_head.dense_depth_uncertainty.0.bias'):
        conv.convert_state_dict(seed, dla_state)


def test_seed_yolo_round_trip_raw_outputs_equal(conv, seed_yolo, tmp_path, capsys):
    """Seed YOLOv8 checkpoint (uncertainty branch removed: the baseline config has none) ->
    converter -> strict load -> the seven raw maps equal the seed model's to 1e-5."""
    state = {k: v for k, v in seed_yolo.state_dict().items()
             if not k.startswith('dense_depth_uncertainty.')}
    assert any(k.startswith('backbone.model.model.22.') for k in state)  # Detect head inside
    src, dst = tmp_path / 'seed_yolo8.pth', tmp_path / 'out.pth'
    save_seed(src, state)
    assert convert_main([str(src), str(dst), '--config', YOLO_CONFIG]) == 0
    assert 'yolo -> ' in capsys.readouterr().out
    converted = torch.load(dst, map_location='cpu', weights_only=True)['state_dict']
    assert not any(k.startswith('backbone.model.22.') for k in converted)  # head dropped
    model = build_plugin(YOLO_CONFIG).eval()
    model.load_state_dict(converted, strict=True)
    x = torch.randn(1, 3, 96, 320, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ours = model.bbox_head(model.neck(model.backbone(x)))
        theirs = seed_yolo(x.clone())
    for name, ref in theirs.items():
        if name == 'dense_depth_uncertainty':
            continue
        assert ref.abs().max() > 0
        torch.testing.assert_close(ours[name], ref, rtol=1e-5, atol=1e-5 * ref.abs().max().item(),
                                   msg=lambda m, n=name: f'{n}: {m}')


def test_seed_dla34_uncertainty_round_trip(conv, dla_state, tmp_path, capsys):
    """A seed DLA-34 checkpoint with the uncertainty branch loads strictly into the detected
    variant's config (monodle_dla34_da3u_kitti.py) without --config."""
    src, dst = tmp_path / 'checkpoint_epoch_140.pth', tmp_path / 'out.pth'
    seed = seed_dla34_state_dict(dla_state, uncertainty=True)
    save_seed(src, seed)
    assert convert_main([str(src), str(dst)]) == 0
    assert 'uncertainty branch -> configs/monodle/monodle_dla34_da3u_kitti.py' in \
        capsys.readouterr().out
    state = torch.load(dst, map_location='cpu', weights_only=True)['state_dict']
    model = build_plugin(DLA_U_CONFIG)
    model.load_state_dict(state, strict=True)
    torch.testing.assert_close(model.bbox_head.dense_depth_uncertainty[2].weight,
                               seed['dense_depth_uncertainty.2.weight'])


def test_seed_yolo_uncertainty_raw_outputs_equal(conv, seed_yolo, tmp_path):
    """Seed YOLOv8 + uncertainty branch -> the _da3u config: the seven maps and the dense
    log-variance equal the seed model's to 1e-5."""
    src, dst = tmp_path / 'seed_yolo8_u.pth', tmp_path / 'out.pth'
    save_seed(src, seed_yolo.state_dict())
    assert convert_main([str(src), str(dst), '--config', YOLO_U_CONFIG]) == 0
    model = build_plugin(YOLO_U_CONFIG).eval()
    model.load_state_dict(torch.load(dst, weights_only=True)['state_dict'], strict=True)
    x = torch.randn(1, 3, 96, 320, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ours = model.bbox_head(model.neck(model.backbone(x)))
        theirs = seed_yolo(x.clone())
    assert set(ours) == set(theirs)
    for name, ref in theirs.items():
        torch.testing.assert_close(ours[name], ref, rtol=1e-5, atol=1e-5 * ref.abs().max().item(),
                                   msg=lambda m, n=name: f'{n}: {m}')


def test_seed_yolo_refusals(conv, seed_yolo, yolo_expected):
    state = {k: v for k, v in seed_yolo.state_dict().items()
             if not k.startswith('dense_depth_uncertainty.')}
    assert set(conv.convert_state_dict(state, yolo_expected)) == set(yolo_expected)
    # a layer the backbone reads is missing: refused
    bad = {k: v for k, v in state.items() if not k.startswith('backbone.model.model.15.')}
    with pytest.raises(conv.ConversionError, match='missing key: backbone.model.15.'):
        conv.convert_state_dict(bad, yolo_expected)
    # with the uncertainty branch into the baseline YOLO config: refused
    with pytest.raises(conv.ConversionError, match='unexpected key .*: bbox_head.dense_depth_'):
        conv.convert_state_dict(seed_yolo.state_dict(), yolo_expected)
    # a YOLO checkpoint declared as DLA-34 (--source dla34): refused, the message stays short
    with pytest.raises(conv.ConversionError) as err:
        conv.convert_state_dict(state, yolo_expected, source='dla34')
    assert "read as 'dla34'" in str(err.value) and 'more missing keys' in str(err.value)
    assert len(str(err.value).splitlines()) < 40


def test_pickled_objects_are_not_loaded(conv, tmp_path):
    """weights_only=True: a checkpoint that needs arbitrary unpickling is refused in one line."""
    src = tmp_path / 'evil.pth'
    torch.save({'model_state': {}, 'cfg': Path('x')}, src)
    with pytest.raises(conv.ConversionError, match='weights_only=True') as err:
        convert_main([str(src), str(tmp_path / 'o.pth'), '--config', DLA_CONFIG])
    assert '\n' not in str(err.value)
