"""Generate Depth Anything 3 metric-depth pseudo-labels for a KITTI split.

Usage:
    python tools/dataset_converters/generate_da3_depth.py data/KITTI --split trainval \\
        --model /path/to/DA3METRIC-LARGE [--out data/KITTI/DA3_depth_results]

Options and file format: ``monodle_plugin/datasets/da3_depth_generation.py`` (``--help``).
"""
import os.path as osp
import sys

if __name__ == '__main__':
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
    from monodle_kitti.cli import run_command
    run_command('monodle_plugin.commands.generate_da3_depth')  # environment checked first
