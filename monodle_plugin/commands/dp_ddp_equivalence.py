"""DP <-> DDP equivalence calculator for MonoDLE's batch size and learning rate.

MonoDLE is sensitive to batch size and lr. This tool answers "I trained with DataParallel (one
process, the whole batch) at batch B and lr on G GPUs; what do I set for DDP on N GPUs?":

    python tools/dp_ddp_equivalence.py --dp-batch 16 --dp-lr 0.00125 --dp-gpus 8 --ddp-gpus 4
    python tools/dp_ddp_equivalence.py --dp-batch 16 --dp-gpus 8 --ddp-per-gpu-batch 2 -v
    python tools/dp_ddp_equivalence.py -v      # the derivation, what is / isn't exact
    python tools/dp_ddp_equivalence.py -s      # 1 process vs 2 gloo processes, gradients

Flags and defaults are the seed system's (``--ddp-gpus`` defaults to ``--dp-gpus``;
``--ddp-per-gpu-batch`` defaults to ``max(1, dp_batch // ddp_gpus)``; ``--ddp-batch`` is an
alias). Rules (those of the reference README): same total batch -> per-GPU batch ``B / N``,
same lr; different total -> linear scaling ``lr * total / B``. The lr is printed in full
precision, followed by the seed's 1/2/4/8-GPU table. With this package the configs carry
``total_batch_size`` and their runner (``MonoDLERunner``) applies the rule under any train tool.

``--simulate`` spawns two CPU processes (gloo), runs one forward/backward of the real
``CenterNet3DHead`` (all MonoDLE losses + depth distillation) on a small conv backbone through
``DistributedDataParallel``, and compares the averaged gradients with one process on the whole
batch, in float64, for batches where the ranks see different numbers of objects (one rank none).

Command body of ``tools/dp_ddp_equivalence.py``; the calculator and the simulation:
:mod:`monodle_plugin.engine.dp_ddp_equivalence`.
"""
from __future__ import annotations

import argparse

from ..engine.dp_ddp_equivalence import (
    DERIVATION,
    equivalent_settings,
    format_report,
    simulate,
)
from ..utils.cli import UserError, write_json_file


def parse_args(argv=None):
    """The seed's flags and defaults (``--ddp-per-gpu-batch``, ``-v``, ``-s``; ``--ddp-gpus``
    defaults to ``--dp-gpus``); ``--ddp-batch`` is kept as an alias."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--dp-batch', type=int, default=16,
                        help='DP total batch size (all GPUs together). Default 16')
    parser.add_argument('--dp-lr', type=float, default=0.00125,
                        help='DP learning rate. Default 0.00125')
    parser.add_argument('--dp-gpus', type=int, default=8, help='GPUs of the DP run. Default 8')
    parser.add_argument('--ddp-gpus', type=int, default=None,
                        help='GPUs (processes) of the DDP run. Default: same as --dp-gpus')
    parser.add_argument('--ddp-per-gpu-batch', '--ddp-batch', dest='ddp_batch', type=int,
                        default=None,
                        help='per-GPU DDP batch. Default: max(1, dp-batch // ddp-gpus); '
                             'the lr is scaled when the total batch changes')
    parser.add_argument('-v', '--verbose', action='store_true', help='print the derivation')
    parser.add_argument('-s', '--simulate', action='store_true',
                        help='numerical gradient comparison: 1 process vs 2 gloo processes')
    parser.add_argument('--seed', type=int, default=0, help='seed of the simulated batch')
    parser.add_argument('--json', help='also write the results to this JSON file')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        res = equivalent_settings(args.dp_batch, args.dp_lr, args.dp_gpus, args.ddp_gpus,
                                  args.ddp_batch)
    except ValueError as e:  # the entry point: one line `error: ...`, exit status 2
        raise UserError(str(e)) from None
    print(format_report(args, res))
    if args.verbose:
        print(DERIVATION)
    out = dict(settings=res)
    status = 0
    if args.simulate:
        print('\nSimulation: CenterNet3DHead (all MonoDLE losses + depth distillation) on a '
              'small conv backbone (eval-mode BN), float64, 1 process vs 2 gloo processes')
        out['simulation'] = simulate(seed=args.seed)
        status = 0 if all(r['equal'] for r in out['simulation']) else 1
        print('=> DDP gradients equal single-process gradients' if status == 0 else
              '=> MISMATCH: DDP gradients differ from single-process gradients')
    if args.json:
        write_json_file(args.json, out)
    return status
