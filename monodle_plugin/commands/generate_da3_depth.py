"""Generate Depth Anything 3 metric-depth pseudo-labels for a KITTI split.

Command body of ``tools/dataset_converters/generate_da3_depth.py`` (argparse + the call);
what it does, its options and checks: :mod:`monodle_plugin.datasets.da3_depth_generation`.
"""
from __future__ import annotations

import argparse
import os.path as osp
from typing import Sequence

from monodle_kitti.kitti_io import SPLIT_FOLDERS

from ..datasets.da3_depth_generation import (
    DEFAULT_MODEL,
    generate,
    load_da3,
    model_kind,
)
from ..utils.cli import UserError


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('data_root', help='raw KITTI root, e.g. data/KITTI')
    parser.add_argument('--split', default='trainval', choices=sorted(SPLIT_FOLDERS))
    parser.add_argument('--out', default=None,
                        help='output folder (default: <data_root>/DA3_depth_results)')
    parser.add_argument('--model', default=DEFAULT_MODEL,
                        help='local weights folder / file, or a hub id (with --allow-download)')
    parser.add_argument('--model-kind', default='auto', choices=['auto', 'metric', 'nested'],
                        help='output units: metric (focal-normalised) or nested (metres)')
    parser.add_argument('--allow-download', action='store_true',
                        help='allow fetching --model from the hub when it is not a local path')
    parser.add_argument('--process-res', type=int, default=504,
                        help="DA3's processing resolution (long side, pixels)")
    parser.add_argument('--batch-size', type=int, default=1, help='frames per DA3 call')
    parser.add_argument('--device', default='cuda', help='torch device, e.g. cuda, cuda:1, cpu')
    parser.add_argument('--overwrite', action='store_true', help='redo finished files')
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        kind = model_kind(args.model, args.model_kind)
    except ValueError as err:
        raise UserError(str(err)) from None
    out = args.out or osp.join(args.data_root, 'DA3_depth_results')
    model = load_da3(args.model, args.device, args.allow_download)
    counts = generate(args.data_root, args.split, out, model, args.model, kind,
                      args.process_res, args.batch_size, args.overwrite)
    print(f'{counts["written"]} written, {counts["skipped"]} skipped -> {out}')


