"""Progress bars of long single-process tools go to stderr; the report on stdout stays clean
(tools/misc/check_depth_labels.py -> monodle_plugin.utils.check_depth_labels)."""
import os.path as osp

from tool_helpers import REPO

from monodle_plugin.utils import check_depth_labels as chk

MINI = osp.join(str(REPO), 'demo', 'kitti_mini', 'KITTI')


def test_check_depth_labels_shows_progress_on_stderr(capsys):
    with open(osp.join(MINI, 'ImageSets', 'val.txt')) as f:
        n = len([line for line in f if line.strip()])
    problems, rows = chk.check(MINI, 'lidar_depth', 'val')
    captured = capsys.readouterr()
    assert problems == 0 and len(rows) == n
    assert f'{n}/{n}' in captured.err  # mmengine ProgressBar: "[>>>] done/total, ..."
    assert f'{n}/{n}' not in captured.out and 'ETA' not in captured.out
