"""Validate a folder of teacher depth maps (DA3 pseudo-labels or LiDAR) against a KITTI split.

Usage:
    python tools/misc/check_depth_labels.py data/KITTI --depth-dir DA3_depth_results \\
        --split train [--lidar-dir lidar_depth] [--per-frame]

Checks and options: ``monodle_plugin/datasets/depth_label_check.py`` (``--help``). Exits 1 if a
file is missing, unreadable, of a wrong shape, all NaN, without a valid pixel or mostly invalid
(``--max-invalid-fraction``), if an image does not decode, or (with ``--lidar-dir``) a frame is
flagged.
"""
import os.path as osp
import sys

if __name__ == '__main__':
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
    from monodle_kitti.cli import ENV_CHECK, run_command
    run_command('monodle_plugin.commands.check_depth_labels', first=ENV_CHECK)
