#!/usr/bin/env python
"""Evaluate every checkpoint of a work dir in one command: a table of epoch vs AP40.

Entry point only: the command is ``monodle_plugin/commands/eval_checkpoints.py``
(``--help`` lists the options).
"""
import os.path as osp
import sys

if __name__ == '__main__':  # the checkout's packages first
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
    from monodle_plugin.commands.eval_checkpoints import main
    from monodle_plugin.utils.cli import run_cli
    run_cli(main)
