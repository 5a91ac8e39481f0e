"""Browse the training data as the model sees it: one PNG per sample, after the training pipeline.

Entry point only: the command is ``monodle_plugin/commands/browse_dataset.py``
(``--help`` lists the options).
"""
import os.path as osp
import sys

if __name__ == '__main__':  # the checkout's packages first
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
    from monodle_plugin.commands.browse_dataset import main
    from monodle_plugin.utils.cli import run_cli
    run_cli(main)
