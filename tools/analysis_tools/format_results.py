#!/usr/bin/env python
"""summary.csv / summary.md over several work dirs: config, run, epoch and the AP40 columns.

Entry point only: the command is ``monodle_plugin/commands/format_results.py``
(``--help`` lists the options).
"""
import os.path as osp
import sys

if __name__ == '__main__':  # the checkout's packages first
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
    from monodle_plugin.commands.format_results import main
    from monodle_plugin.utils.cli import run_cli
    run_cli(main)
