"""Evaluate KITTI result files against KITTI label files (AP40 and AP11, CPU only).

Entry point only: the command is ``monodle_kitti/commands/kitti_eval.py`` (``--help`` lists the
options). Torch-free: imports only the package ``monodle_kitti`` (numpy + numba).
"""
import os.path as osp
import sys

if __name__ == '__main__':  # the checkout's packages first
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
    from monodle_kitti.cli import run_cli
    from monodle_kitti.commands.kitti_eval import main
    run_cli(main)  # needs numpy + numba only: no OpenMMLab environment check
