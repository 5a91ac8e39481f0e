#!/usr/bin/env python
"""Training curves and iteration times of runs, from mmengine's ``vis_data/scalars.json``.

Entry point only: the command is ``monodle_plugin/commands/analyze_logs.py``
(``--help`` lists the options).
"""
import os.path as osp
import sys

if __name__ == '__main__':  # the checkout's packages first
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
    from monodle_plugin.commands.analyze_logs import main
    from monodle_plugin.utils.cli import run_cli
    run_cli(main)
