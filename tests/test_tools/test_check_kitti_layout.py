"""tools/misc/check_kitti_layout.py: complete layouts pass, missing files are named."""
import os.path as osp
import shutil
import subprocess
import sys

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
TOOL = osp.join(REPO, 'tools', 'misc', 'check_kitti_layout.py')
MINI = osp.join(REPO, 'demo', 'kitti_mini', 'KITTI')


def run(*args):
    return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True,
                          timeout=60)


def test_demo_layout_is_complete():
    out = run(MINI, '--depth-dir', 'lidar_depth')
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count('complete') == 3  # train, val, trainval
    # mmengine's ProgressBar over the 13 frames (checked once: val / trainval repeat them) goes
    # to stderr; the report on stdout stays clean
    assert '13/13' in out.stderr and 'ETA' not in out.stdout


def test_missing_files_are_named_and_fail(tmp_path):
    root = tmp_path / 'KITTI'
    shutil.copytree(MINI, root)
    (root / 'training' / 'calib' / '000015.txt').unlink()
    (root / 'lidar_depth' / '000076.npz').unlink()
    out = run(str(root), '--depth-dir', 'lidar_depth')
    assert out.returncode == 1
    assert '1 missing in calib/ (first: 000015.txt)' in out.stdout
    assert '(first: 000076.npz)' in out.stdout


def test_missing_image_sets_fails(tmp_path):
    out = run(str(tmp_path))
    assert out.returncode == 1 and 'ImageSets' in out.stdout
