#!/usr/bin/env python
"""Pictures of what the model sees: GT vs prediction (2D + 3D boxes, BEV) and its dense maps.

Entry point only: the command is ``monodle_plugin/commands/visualize.py``
(``--help`` lists the options).
"""
import os.path as osp
import sys

if __name__ == '__main__':  # the checkout's packages first
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
    from monodle_plugin.commands.visualize import main
    from monodle_plugin.utils.cli import run_cli
    run_cli(main)
