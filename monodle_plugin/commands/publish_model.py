"""Publish a trained checkpoint (``tools/model_converters/publish_model.py``, mmdet3d's name).

Command body of ``tools/model_converters/publish_model.py`` (argparse + the call);
what it does, its options and checks: :mod:`monodle_plugin.deployment.publish_model`.
"""
from __future__ import annotations

import argparse
import os.path as osp

from ..deployment.publish_model import (
    publish_checkpoint,
)


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(
        description='Publish a checkpoint: strip training state, add inference metadata, name '
        'it <out>-<sha256[:8]>.pth (see monodle_plugin/deployment/publish_model.py).')
    parser.add_argument('in_file', help='input checkpoint (tools/train.py)')
    parser.add_argument('out_file', help='output name, e.g. monodle_yolo8_kitti.pth')
    args = parser.parse_args(argv)
    final = publish_checkpoint(args.in_file, args.out_file)
    size = osp.getsize(final) / 2**20
    print(f'wrote {final} ({size:.1f} MiB; was {osp.getsize(args.in_file) / 2**20:.1f} MiB)')
    return final


