#!/usr/bin/env python
"""Monocular 3D detection on any camera: images / folders / globs / videos -> drawings, KITTI

Entry point only: the command is ``monodle_plugin/commands/demo.py``
(``--help`` lists the options).
"""
import os.path as osp
import sys

if __name__ == '__main__':  # the checkout's packages first
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
    from monodle_kitti.cli import ENV_CHECK, run_command
    run_command('monodle_plugin.commands.demo', first=ENV_CHECK)
