"""Benchmark the CPU KITTI evaluation against mmdet3d's ``kitti_eval`` on a val-sized set.

Entry point only: the command is ``monodle_plugin/commands/benchmark_kitti_eval.py``
(``--help`` lists the options).
"""
import os.path as osp
import sys

if __name__ == '__main__':  # the checkout's packages first
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
    import numpy as np

    from monodle_plugin.commands.benchmark_kitti_eval import main
    np.set_printoptions(precision=4)
    main()
