#!/usr/bin/env python
"""KITTI AP as a function of a pixel shift of the projected 3D centres (localisation error).

Entry point only: the command is ``monodle_plugin/commands/loc_error_by_shifting.py``
(``--help`` lists the options).
"""
import os.path as osp
import sys

if __name__ == '__main__':  # the checkout's packages first
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
    from monodle_plugin.commands.loc_error_by_shifting import main
    from monodle_plugin.utils.cli import run_cli
    run_cli(main)
