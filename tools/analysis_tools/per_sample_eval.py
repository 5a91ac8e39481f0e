#!/usr/bin/env python
"""Per-image precision / recall / F1 of a KITTI result folder, or where one of two folders wins.

Entry point only: the command is ``monodle_plugin/commands/per_sample_eval.py``
(``--help`` lists the options).
"""
import os.path as osp
import sys

if __name__ == '__main__':  # the checkout's packages first
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
    from monodle_plugin.commands.per_sample_eval import main
    from monodle_plugin.utils.cli import run_cli
    run_cli(main)
