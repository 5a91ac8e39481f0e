"""Configs are data: `_base_` inheritance and literals only, channel lists written out that
match the backbones, every config parses and formats (the runner dumps it)."""
import ast
import os.path as osp
from pathlib import Path

import pytest
from mmengine.config import Config

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / 'configs').rglob('*.py'))
# what may be called in a config: dict(...) and list(...) literals
ALLOWED_CALLS = {'dict', 'list'}


def offences(path: Path) -> list:
    """``file:line: what`` for every import, def, if or call other than dict()/list()."""
    found = []
    name = path.relative_to(ROOT) if ROOT in path.parents else path.name
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        what = None
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            what = 'import'
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda,
                               ast.ClassDef)):
            what = 'def / lambda / class'
        elif isinstance(node, (ast.If, ast.IfExp, ast.For, ast.While, ast.With,
                               ast.ListComp, ast.DictComp, ast.SetComp, ast.GeneratorExp)):
            what = 'control flow'
        elif isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id in ALLOWED_CALLS):
                what = f'call {ast.unparse(node.func)}()'
            elif any(isinstance(a, ast.Starred) for a in node.args) or any(
                    k.arg is None for k in node.keywords):
                what = 'call with * / ** unpacking'
        if what:
            found.append(f'{name}:{node.lineno}: {what}')
    return found


def test_the_checker_catches_code(tmp_path):
    bad = tmp_path / 'bad.py'
    bad.write_text('import os\nx = dict(a=1)\nif x:\n    y = len(x)\nz = dict(**x)\n')
    kinds = sorted(line.split(': ', 1)[1] for line in offences(bad))
    assert kinds == ['call len()', 'call with * / ** unpacking', 'control flow', 'import']


def test_no_code_in_configs():
    assert len(CONFIGS) >= 16
    found = [line for path in CONFIGS for line in offences(path)]
    assert not found, '\n'.join(found)


@pytest.mark.parametrize('path', [p for p in CONFIGS if '_base_' not in p.parts],
                         ids=lambda p: str(p.relative_to(ROOT / 'configs')))
def test_config_parses_and_formats(path):
    cfg = Config.fromfile(str(path))
    assert cfg.runner_type == 'MonoDLERunner'
    assert cfg.train_dataloader.batch_size == 'auto'
    # the recipes' lr is for a total batch of 16; the kitti_mini demo's for its own total of 2
    base = 2 if path.name == 'monodle_yolo8_da3_kitti_mini.py' else 16
    assert cfg.auto_scale_lr == dict(enable=True, base_batch_size=base)
    assert "type='MonoDLE'" in cfg.pretty_text  # the runner dumps it into the work dir
    # GPU settings (README "GPU vs CPU numbers"; dataloader 'auto': dataloader_settings.py)
    assert cfg.env_cfg.cudnn_benchmark is True  # fixed input size; nothing on CPU
    # trainval configs (test-server submissions) have no validation loader
    loaders = [d for d in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader)
               if d is not None]
    if 'demo' in path.parts:  # the CPU demo: data read in the main process, 1 image per test
        assert [d.num_workers for d in loaders] == [0, 0, 0]
        assert cfg.val_dataloader.batch_size == cfg.test_dataloader.batch_size == 1
    else:
        assert [(d.num_workers, d.pin_memory) for d in loaders] == [('auto', 'auto')] * len(
            loaders)
        assert all(d.batch_size == 4 for d in (cfg.val_dataloader, cfg.test_dataloader)
                   if d is not None)


@pytest.mark.slow
@pytest.mark.parametrize('version', ['yolo8', 'yolo11', 'yolo26'])
def test_written_channels_match_the_backbone(version):
    """neck / head channels typed in the configs = the backbone's, built offline."""
    from monodle_plugin.models.backbones.ultralytics_backbone import UltralyticsBackbone
    built = UltralyticsBackbone.infer_out_channels(version)
    for name in (f'monodle_{version}_kitti.py', f'monodle_{version}_da3_kitti.py'):
        cfg = Config.fromfile(osp.join(ROOT, 'configs', 'ablation', name))
        assert cfg.model.backbone.ultralytics_model == version
        assert list(cfg.model.neck.in_channels) == built, name
        assert cfg.model.bbox_head.in_channels == built[0], name
    expected = {'yolo8': [32, 64, 128, 256], 'yolo11': [64, 64, 128, 256],
                'yolo26': [64, 64, 128, 256]}
    assert built == expected[version]


def test_configs_are_payload_and_each_folder_has_a_readme():
    """The prose of a config folder is in its README.md (one place), not repeated at the top of
    every file (issue 24): a file has fewer comment lines than lines of config, and every
    folder of configs, _base_/distill included, has a README.md."""
    heavy = []
    for path in CONFIGS:
        lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        comments = sum(line.startswith('#') for line in lines)
        if comments >= len(lines) - comments:
            heavy.append(f'{path.relative_to(ROOT)}: {comments} comment lines')
    assert not heavy, '\n'.join(heavy)
    folders = {p.parent for p in CONFIGS} - {ROOT / 'configs' / '_base_' / sub for sub in (
        'models', 'datasets', 'schedules')} - {ROOT / 'configs' / '_base_'}
    assert sorted(f.relative_to(ROOT) for f in folders if not (f / 'README.md').is_file()) == []
