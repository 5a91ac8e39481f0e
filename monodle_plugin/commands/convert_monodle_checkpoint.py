"""Official MonoDLE and seed-system (MonoDDLE) checkpoints -> this plugin's state dict.

Command body of ``tools/model_converters/convert_monodle_checkpoint.py`` (argparse + the call);
what it does, its options and checks: :mod:`monodle_plugin.models.utils.official_checkpoint`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ..models.utils.official_checkpoint import (
    DEFAULT_CONFIGS,
    SOURCES,
    ConversionError,
    build_expected,
    convert_imagenet_dla34,
    convert_state_dict,
    detect_source,
    load_checkpoint_file,
)

DEFAULT_CONFIG = DEFAULT_CONFIGS[('dla34', False)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='official / seed checkpoint (checkpoint_epoch_140.pth)')
    parser.add_argument('dst', help='output file for this plugin')
    parser.add_argument('--config', default=None,
                        help='config whose model the result must fit exactly (default: the '
                             'config of the detected variant)')
    parser.add_argument('--source', choices=SOURCES, default='auto',
                        help='backbone layout of the checkpoint (default: from its keys)')
    parser.add_argument('--imagenet-dla34', action='store_true',
                        help='convert the ImageNet DLA-34 weights into a backbone checkpoint')
    args = parser.parse_args(argv)
    try:
        if args.imagenet_dla34:
            state = load_checkpoint_file(args.src, None)
            converted = convert_imagenet_dla34(
                state, build_expected(args.config or DEFAULT_CONFIG, 'backbone'))
            variant = 'ImageNet DLA-34 backbone'
        else:
            state = load_checkpoint_file(args.src, 'model_state')
            found = detect_source(state, args.source)
            config = args.config or DEFAULT_CONFIGS[(found['backbone'], found['uncertainty'])]
            variant = (f'{found["backbone"]}'
                       f'{" + uncertainty branch" if found["uncertainty"] else ""} -> {config}')
            converted = convert_state_dict(state, build_expected(config), found['backbone'])
    except ConversionError as err:
        if str(args.src) in str(err):
            raise
        raise ConversionError(f'{args.src}: {err}') from err
    Path(args.dst).parent.mkdir(parents=True, exist_ok=True)
    torch.save({'state_dict': converted,
                'meta': dict(source=str(args.src), converter='convert_monodle_checkpoint')},
               args.dst)
    print(f'{variant}: wrote {len(converted)} tensors to {args.dst}')
    return 0
