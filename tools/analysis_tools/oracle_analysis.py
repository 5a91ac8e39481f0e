#!/usr/bin/env python
"""Oracle analysis: AP40 when predicted items of matched detections are replaced by the GT.

Entry point only: the command is ``monodle_plugin/commands/oracle_analysis.py``
(``--help`` lists the options).
"""
import os.path as osp
import sys

if __name__ == '__main__':  # the checkout's packages first
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
    from monodle_plugin.commands.oracle_analysis import main
    from monodle_plugin.utils.cli import run_cli
    run_cli(main)
