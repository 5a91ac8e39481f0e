#!/usr/bin/env python
"""DP <-> DDP equivalence calculator for MonoDLE's batch size and learning rate.

    python tools/dp_ddp_equivalence.py --dp-batch 16 --dp-lr 0.00125 --dp-gpus 8 --ddp-gpus 4
    python tools/dp_ddp_equivalence.py --verbose      # the derivation, what is / isn't exact
    python tools/dp_ddp_equivalence.py --simulate     # 1 process vs 2 gloo processes, gradients

Rules and the simulation: ``monodle_plugin/engine/dp_ddp_equivalence.py``; options:
``monodle_plugin/commands/dp_ddp_equivalence.py``.
"""
import os
import os.path as osp
import sys

if __name__ == '__main__':
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    from monodle_kitti.cli import ENV_CHECK, run_command
    run_command('monodle_plugin.commands.dp_ddp_equivalence', first=ENV_CHECK)
