"""Side-by-side cost of MonoDLE variants: parameters, MACs, CPU latency, peak memory.

Entry point only: the command is ``monodle_plugin/commands/benchmark.py``
(``--help`` lists the options).
"""
import os.path as osp
import sys

if __name__ == '__main__':  # the checkout's packages first
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
    from monodle_plugin.commands.benchmark import main
    main()
