"""Check a KITTI folder against the layout monodle_plugin reads, and every file's content.

Entry point only: the command is ``monodle_plugin/commands/check_kitti_layout.py``
(``--help`` lists the options).
"""
import os.path as osp
import sys

if __name__ == '__main__':  # the checkout's packages first
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
    from monodle_plugin.commands.check_kitti_layout import main
    from monodle_plugin.utils.cli import run_cli
    run_cli(main)
