"""Model zoo: model-index.yml imports one metafile.yml per config folder (mmdet3d's format), every
config is listed once, numbers only where counted, and mmengine still resolves
`monodle_plugin::<folder>/<config>.py` with the metafiles present."""
import os
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
#: config folders with a model zoo page (configs/demo is the kitti_mini demo, not a model)
ZOO_FOLDERS = ['', 'monodle', 'ablation', 'yolo_scales', 'yolo_native_neck', 'backbones']


def _load(path: Path) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


def test_index_lists_every_config_once_in_mmdet3d_format():
    index = _load(ROOT / 'model-index.yml')
    imports = index['Import']
    assert imports == [f'configs/{f}/metafile.yml'.replace('//', '/') for f in ZOO_FOLDERS]
    listed, names = [], []
    for meta_path in imports:
        folder = (ROOT / meta_path).parent
        assert (folder / 'README.md').is_file(), folder
        meta = _load(ROOT / meta_path)
        collections = {c['Name'] for c in meta['Collections']}
        for c in meta['Collections']:
            assert (ROOT / c['README']).is_file() and c['Paper']['URL'].startswith('https://')
        for model in meta['Models']:
            assert model['In Collection'] in collections, model['Name']
            assert (ROOT / model['Config']).is_file(), model['Config']
            assert Path(model['Config']).parent == Path(meta_path).parent, model['Config']
            assert model['Name'] == Path(model['Config']).stem
            md = model['Metadata']
            assert md['Training Data'] == 'KITTI' and md['Architecture']
            # counted numbers come in pairs; results stay empty until a run is measured
            assert ('Parameters (M)' in md) == ('GMACs' in md), model['Name']
            if 'GMACs' in md:
                assert 0 < md['Parameters (M)'] < 200 and 0 < md['GMACs'] < 1000
            assert model['Results'] == [], model['Name']
            listed.append(model['Config'])
            names.append(model['Name'])
    assert len(names) == len(set(names))
    configs = sorted(str(p.relative_to(ROOT)) for f in ZOO_FOLDERS
                     for p in (ROOT / 'configs' / f).glob('*.py'))
    assert sorted(listed) == configs


def test_readme_tables_follow_the_metafiles():
    for folder in ZOO_FOLDERS:
        meta = _load(ROOT / 'configs' / folder / 'metafile.yml')
        readme = (ROOT / 'configs' / folder / 'README.md').read_text()
        for model in meta['Models']:
            md = model['Metadata']
            row = (f"| `{model['Config']}` | {md.get('Parameters (M)', '-')} | "
                   f"{md.get('GMACs', '-')} | not yet measured |")
            assert row in readme, row


def test_loaders_read_the_index(tmp_path):
    """mim's loader (modelindex) when installed; mmengine's metafile lookup always: it loads
    every imported metafile and, finding no model named like the config, falls back to the
    config path (what `monodle_plugin::monodle/monodle_dla34_kitti.py` relies on)."""
    try:
        from modelindex.load_utils import load
    except ImportError:
        load = None
    if load is not None:
        models = load(str(ROOT / 'model-index.yml')).models
        assert len(models) == sum(len(_load(ROOT / 'configs' / f / 'metafile.yml')['Models'])
                                  for f in ZOO_FOLDERS)
    from mmengine.config.utils import _get_external_cfg_base_path, _get_external_cfg_path
    package = tmp_path / 'monodle_plugin'  # an installed package's .mim layout
    (package / '.mim').mkdir(parents=True)
    os.symlink(ROOT / 'configs', package / '.mim' / 'configs')
    os.symlink(ROOT / 'model-index.yml', package / '.mim' / 'model-index.yml')
    with pytest.raises(ValueError, match='Expected configs'):
        _get_external_cfg_path(str(package), 'monodle/monodle_dla34_kitti.py')
    found = _get_external_cfg_base_path(str(package), 'monodle/monodle_dla34_kitti.py')
    assert Path(found).resolve() == ROOT / 'configs' / 'monodle' / 'monodle_dla34_kitti.py'
