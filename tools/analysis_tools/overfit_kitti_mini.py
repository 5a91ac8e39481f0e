"""Overfit MonoDLE on a few kitti_mini frames (CPU): losses must fall, boxes approach labels.

Entry point only: the command is ``monodle_plugin/commands/overfit_kitti_mini.py``
(``--help`` lists the options).
"""
import os.path as osp
import sys

if __name__ == '__main__':  # the checkout's packages first
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
    from monodle_plugin.commands.overfit_kitti_mini import main
    from monodle_plugin.utils.cli import run_cli
    run_cli(main)
