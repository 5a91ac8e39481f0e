"""The config of the guide "Using the components in another mmdet3d project"
(docs/en/components.md, linked from the README), copied verbatim into another project, trains
one step under mmdet3d's stock tools/train.py (no MonoDLERunner)."""
import glob
import json
import os
import os.path as osp
import re
import subprocess
import sys
from pathlib import Path

import mmdet3d
import pytest

REPO = Path(__file__).resolve().parents[1]
STOCK_TRAIN = osp.join(osp.dirname(mmdet3d.__file__), '.mim', 'tools', 'train.py')
MINI = str(REPO / 'demo' / 'kitti_mini' / 'KITTI') + '/'


def readme_example() -> str:
    """The guide's config (docs/en/components.md; docs/zh_cn/ holds the same code blocks)."""
    text = (REPO / 'docs' / 'en' / 'components.md').read_text(encoding='utf-8')
    blocks = re.findall(r'```python\n(.*?)```', text, re.S)
    assert blocks and blocks[0].startswith('# my_project/configs/my_mono3d.py')
    return blocks[0]


@pytest.mark.slow
def test_readme_example_trains_under_the_stock_tool(tmp_path):
    from test_packaging import require_pkg_resources
    require_pkg_resources()  # `mmdet3d::_base_/...`
    config = tmp_path / 'my_project' / 'configs' / 'my_mono3d.py'
    config.parent.mkdir(parents=True)
    config.write_text(readme_example())
    options = [f'{loader}.dataset.data_root={MINI}' for loader in ('train_dataloader',
                                                                   'val_dataloader')]
    options += [f'val_evaluator.data_root={MINI}', 'train_dataloader.dataset.indices=2',
                'train_dataloader.num_workers=0', 'val_dataloader.num_workers=0',
                'train_dataloader.dataset.pipeline.2.output_size=(320,96)',
                'train_cfg.max_epochs=1', 'train_cfg.val_begin=1000',
                'default_hooks.logger.interval=1', 'default_hooks.checkpoint.interval=-1']
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1',
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get('PYTHONPATH', '')]))
    env.pop('WORLD_SIZE', None)
    proc = subprocess.run([sys.executable, STOCK_TRAIN, str(config), '--work-dir',
                           str(tmp_path / 'wd'), '--cfg-options', *options],
                          cwd=tmp_path / 'my_project', env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    [scalars] = glob.glob(str(tmp_path / 'wd' / '*' / 'vis_data' / 'scalars.json'))
    rows = [json.loads(line) for line in open(scalars) if line.strip()]
    assert len(rows) == 1 and rows[0]['iter'] == 1
    assert rows[0]['lr'] == pytest.approx(1.25e-3 * 2 / 16)  # auto_scale_lr, 1 process x 2
    losses = {k: v for k, v in rows[0].items() if k.startswith('loss')}
    assert {'loss_heatmap', 'loss_depth', 'loss_size_3d'} <= set(losses)
    assert all(v == v and abs(v) < 1e6 for v in losses.values())  # finite
