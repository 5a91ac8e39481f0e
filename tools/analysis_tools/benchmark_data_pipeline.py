"""Images/s of the training data pipeline against the official MonoDLE dataset, in one run.

Entry point only: the command is ``monodle_plugin/commands/benchmark_data_pipeline.py``
(``--help`` lists the options).
"""
import os.path as osp
import sys

if __name__ == '__main__':  # the checkout's packages first
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
    from monodle_plugin.commands.benchmark_data_pipeline import main
    main()
