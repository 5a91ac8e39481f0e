#!/usr/bin/env python
"""Train a MonoDLE detector (mmdet3d's ``tools/train.py`` conventions).

Entry point only: the command is ``monodle_plugin/commands/train.py``
(``--help`` lists the options).
"""
import os.path as osp
import sys

if __name__ == '__main__':  # the checkout's packages first
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
    from monodle_kitti.cli import ENV_CHECK, run_command
    run_command('monodle_plugin.commands.train', first=ENV_CHECK)
