"""The checkpoint converter (tools/convert_monodle_checkpoint.py): official MonoDLE names ->
plugin names, refusals."""
import re
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / 'configs/monodle/monodle_dla34_kitti.py')


@pytest.fixture(scope='module')
def conv():
    from monodle_plugin.models.utils import official_checkpoint
    return official_checkpoint


def convert_main(argv):
    """tools/convert_monodle_checkpoint.py's body."""
    from monodle_plugin.commands.convert_monodle_checkpoint import main
    return main(argv)


@pytest.fixture(scope='module')
def plugin_state(conv):
    torch.set_num_threads(1)
    return conv.build_expected(CONFIG)


@pytest.fixture(scope='module')
def fake_official(plugin_state):
    """An official-looking ``model_state``: the names MonoDLE's CenterNet3D uses (DLA with
    ``bn1``/``bn2``/``root.bn``, top-level heads, ImageNet ``fc``), random values."""
    gen = torch.Generator().manual_seed(0)
    out = {}
    for key, value in plugin_state.items():
        name = key[len('bbox_head.'):] if key.startswith('bbox_head.') else key
        if name.startswith('backbone.'):
            name = re.sub(r'\.norm(\d)\.', r'.bn\1.', name).replace('.root.norm.', '.root.bn.')
        out[name] = (torch.randn(value.shape, generator=gen) if value.is_floating_point()
                     else value.clone())
    out['backbone.fc.weight'] = torch.randn(1000, 512, 1, 1)
    out['backbone.fc.bias'] = torch.randn(1000)
    return out


def test_known_official_names_map(conv):
    assert conv.map_key('backbone.level2.tree1.bn1.weight') == \
        'backbone.level2.tree1.norm1.weight'
    assert conv.map_key('backbone.level2.root.bn.running_var') == \
        'backbone.level2.root.norm.running_var'
    assert conv.map_key('backbone.level2.project.1.weight') == 'backbone.level2.project.1.weight'
    assert conv.map_key('backbone.base_layer.1.bias') == 'backbone.base_layer.1.bias'
    assert conv.map_key('neck.ida_2.up_3.weight') == 'neck.ida_2.up_3.weight'
    assert conv.map_key('heatmap.2.bias') == 'bbox_head.heatmap.2.bias'
    assert conv.map_key('module.heading.0.weight') == 'bbox_head.heading.0.weight'
    assert conv.map_key('backbone.fc.weight') is None


def test_full_conversion_loads_strictly(conv, fake_official, plugin_state, tmp_path):
    assert len(fake_official) == 342  # official CenterNet3D(dla34) state dict size
    src, dst = tmp_path / 'checkpoint_epoch_140.pth', tmp_path / 'out.pth'
    torch.save({'epoch': 140, 'model_state': fake_official, 'optimizer_state': None}, src)
    assert convert_main([str(src), str(dst), '--config', CONFIG]) == 0
    state = torch.load(dst, map_location='cpu')['state_dict']
    assert set(state) == set(plugin_state)
    torch.testing.assert_close(state['backbone.level5.tree2.norm2.running_mean'],
                               fake_official['backbone.level5.tree2.bn2.running_mean'])
    torch.testing.assert_close(state['bbox_head.depth.2.weight'],
                               fake_official['depth.2.weight'])


@pytest.mark.parametrize('change', ['unknown', 'missing', 'shape'])
def test_refuses_partial_conversion(conv, fake_official, tmp_path, change):
    bad = dict(fake_official)
    if change == 'unknown':
        bad['dcn.conv.weight'] = torch.zeros(1)
    elif change == 'missing':
        del bad['neck.ida_1.node_2.conv.weight']
    else:
        bad['heatmap.2.weight'] = torch.zeros(4, 256, 1, 1)
    src, dst = tmp_path / 'ckpt.pth', tmp_path / 'out.pth'
    torch.save({'model_state': bad}, src)
    with pytest.raises(conv.ConversionError) as err:  # the entry point: one line, exit 2
        convert_main([str(src), str(dst), '--config', CONFIG])
    assert not dst.exists()
    expected = {'unknown': 'unknown key: dcn.conv.weight',
                'missing': 'missing key: neck.ida_1.node_2.conv.weight',
                'shape': 'shape mismatch: bbox_head.heatmap.2.weight'}[change]
    assert expected in str(err.value) and str(err.value).startswith(f'{src}: ')


def test_not_an_official_checkpoint(conv, tmp_path):
    src = tmp_path / 'other.pth'
    torch.save({'state_dict': {}}, src)
    with pytest.raises(conv.ConversionError, match="no 'model_state'") as err:
        convert_main([str(src), str(tmp_path / 'o.pth'), '--config', CONFIG])
    assert str(err.value).count(str(src)) == 1  # named once, not prefixed twice


def test_imagenet_dla34_to_backbone(conv, fake_official, tmp_path):
    """The ImageNet DLA-34 file (no prefix, with fc) becomes a DLANet state dict."""
    imagenet = {k[len('backbone.'):]: v for k, v in fake_official.items()
                if k.startswith('backbone.')}
    src, dst = tmp_path / 'dla34-ba72cf86.pth', tmp_path / 'dla34_mm.pth'
    torch.save(imagenet, src)
    assert convert_main([str(src), str(dst), '--config', CONFIG, '--imagenet-dla34']) == 0
    state = torch.load(dst, map_location='cpu')['state_dict']
    assert 'level2.tree1.norm1.weight' in state and 'fc.weight' not in state
    torch.testing.assert_close(state['level2.root.norm.running_var'],
                               imagenet['level2.root.bn.running_var'])


@pytest.mark.parametrize('tool', ['tools/convert_monodle_checkpoint.py',
                                  'tools/model_converters/convert_monodle_checkpoint.py'])
def test_entry_points_run_the_converter(tool, tmp_path):
    """Both entry points (the README's path and mmdet3d's model_converters/) are the converter."""
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, str(REPO / tool), str(tmp_path / 'missing.pth'),
                           str(tmp_path / 'out.pth')], capture_output=True, text=True,
                          cwd=REPO, timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr  # a user error: one line
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith('error: ') and 'missing.pth: no such file' in proc.stderr
    assert not (tmp_path / 'out.pth').exists()
