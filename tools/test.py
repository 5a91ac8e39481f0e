#!/usr/bin/env python
"""Test (and evaluate) a MonoDLE checkpoint (mmdet3d's ``tools/test.py`` conventions).

Entry point only: the command is ``monodle_plugin/commands/test.py``
(``--help`` lists the options).
"""
import os.path as osp
import sys

if __name__ == '__main__':  # the checkout's packages first
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
    from monodle_kitti.cli import ENV_CHECK, run_command
    run_command('monodle_plugin.commands.test', first=ENV_CHECK)
