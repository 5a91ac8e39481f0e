"""Convert an official MonoDLE checkpoint (xinzhuma/monodle) to this plugin's state dict.

Usage:
    python tools/model_converters/convert_monodle_checkpoint.py checkpoint_epoch_140.pth \\
        monodle_dla34.pth
    python tools/model_converters/convert_monodle_checkpoint.py --imagenet-dla34 \\
        dla34-ba72cf86.pth dla34_mm.pth

The official file holds the model under ``model_state`` (``CenterNet3D``: ``backbone.*``
DLA-34 with ``bn*`` BatchNorms, ``neck.*`` DLAUp, seven top-level heads ``heatmap.*`` ...).
Mapping: ``backbone.**.bn{1,2}`` / ``root.bn`` -> mmdet3d ``DLANet``'s ``norm{1,2}`` /
``root.norm``; ``neck.*`` unchanged; ``<branch>.*`` -> ``bbox_head.<branch>.*``; the unused
ImageNet classifier ``backbone.fc.*`` is dropped. The result is checked against the model
built from ``--config``: any unknown, missing or mis-shaped key aborts the conversion and
nothing is written.

``--imagenet-dla34`` converts the ImageNet DLA-34 file MonoDLE starts from into a backbone
checkpoint for ``init_cfg=dict(type='Pretrained', checkpoint=OUT)``.
"""
from __future__ import annotations

import argparse
import re
import sys
from collections import OrderedDict
from pathlib import Path

import torch

HEAD_BRANCHES = ('heatmap', 'offset_2d', 'size_2d', 'depth', 'offset_3d', 'size_3d', 'heading')
DEFAULT_CONFIG = 'configs/monodle/monodle_dla34_kitti.py'
_BN_RENAMES = ((re.compile(r'\.bn(\d)\.'), r'.norm\1.'),
               (re.compile(r'\.root\.bn\.'), '.root.norm.'))


class ConversionError(RuntimeError):
    """Raised when a checkpoint cannot be converted completely."""


def map_key(key: str) -> str | None:
    """Official MonoDLE key -> plugin key; None for keys deliberately dropped.

    Raises:
        ConversionError: for a key that belongs to no known part.
    """
    if key.startswith('module.'):
        key = key[len('module.'):]
    if key.startswith('backbone.fc.'):
        return None
    if key.startswith('backbone.'):
        for pattern, repl in _BN_RENAMES:
            key = pattern.sub(repl, key)
        return key
    if key.startswith('neck.'):
        return key
    branch = key.split('.', 1)[0]
    if branch in HEAD_BRANCHES:
        return f'bbox_head.{key}'
    raise ConversionError(f'unknown key {key!r}')


def convert_state_dict(official: dict, expected: dict | None = None) -> OrderedDict:
    """Convert a MonoDLE ``model_state`` dict; check it against ``expected`` (name -> tensor).

    Raises:
        ConversionError: listing every unknown key, missing key and shape mismatch.
    """
    converted, unknown = OrderedDict(), []
    for key, value in official.items():
        try:
            new_key = map_key(key)
        except ConversionError:
            unknown.append(key)
            continue
        if new_key is not None:
            converted[new_key] = value
    problems = [f'unknown key: {k}' for k in unknown]
    if expected is not None:
        problems += [f'missing key: {k}' for k in expected if k not in converted]
        problems += [f'unexpected key (no such parameter in the model): {k}'
                     for k in converted if k not in expected]
        problems += [f'shape mismatch: {k} {tuple(v.shape)} vs model {tuple(expected[k].shape)}'
                     for k, v in converted.items()
                     if k in expected and tuple(v.shape) != tuple(expected[k].shape)]
    if problems:
        raise ConversionError(f'{len(problems)} problem(s), nothing written:\n  '
                              + '\n  '.join(problems))
    return converted


def convert_imagenet_dla34(state: dict, expected: dict | None = None) -> OrderedDict:
    """ImageNet DLA-34 (``base_layer.*``, ``level*``, ``fc.*``) -> ``DLANet`` state dict."""
    prefixed = {f'backbone.{k}': v for k, v in state.items()}
    converted = convert_state_dict(prefixed)
    out = OrderedDict((k[len('backbone.'):], v) for k, v in converted.items())
    if expected is not None:
        problems = [f'missing key: {k}' for k in expected if k not in out]
        problems += [f'unexpected key: {k}' for k in out if k not in expected]
        problems += [f'shape mismatch: {k}' for k in out
                     if k in expected and tuple(out[k].shape) != tuple(expected[k].shape)]
        if problems:
            raise ConversionError(f'{len(problems)} problem(s), nothing written:\n  '
                                  + '\n  '.join(problems))
    return out


def build_expected(config: str, part: str = 'model') -> dict:
    """State dict of the model (or only its backbone) built from ``config``."""
    from mmdet3d.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmdet3d'))
    if part == 'backbone':
        return MODELS.build(cfg.model.backbone).state_dict()
    return MODELS.build(cfg.model).state_dict()


def load_official(path: str, key: str | None) -> dict:
    """Read a checkpoint; return the dict under ``key`` (or the whole dict for None)."""
    if not Path(path).is_file():
        raise ConversionError(f'{path}: no such file')
    # weights_only=False: official MonoDLE checkpoints also pickle the optimizer state and
    # the epoch; only use it on a file you trust (the user names it explicitly).
    ckpt = torch.load(path, map_location='cpu', weights_only=False)
    if key is None:
        return ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else ckpt
    if not isinstance(ckpt, dict) or key not in ckpt:
        found = list(ckpt)[:5] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ConversionError(f'{path}: no {key!r} entry (found {found}); is this an official '
                              'MonoDLE checkpoint (checkpoint_epoch_*.pth)?')
    return ckpt[key]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='official checkpoint (checkpoint_epoch_140.pth)')
    parser.add_argument('dst', help='output file for this plugin')
    parser.add_argument('--config', default=DEFAULT_CONFIG,
                        help='config whose model the result must fit exactly')
    parser.add_argument('--imagenet-dla34', action='store_true',
                        help='convert the ImageNet DLA-34 weights into a backbone checkpoint')
    args = parser.parse_args(argv)
    try:
        if args.imagenet_dla34:
            state = load_official(args.src, None)
            converted = convert_imagenet_dla34(state, build_expected(args.config, 'backbone'))
        else:
            state = load_official(args.src, 'model_state')
            converted = convert_state_dict(state, build_expected(args.config))
    except ConversionError as err:
        print(f'convert_monodle_checkpoint: {args.src}: {err}', file=sys.stderr)
        return 1
    Path(args.dst).parent.mkdir(parents=True, exist_ok=True)
    torch.save({'state_dict': converted,
                'meta': dict(source=str(args.src), converter='convert_monodle_checkpoint')},
               args.dst)
    print(f'wrote {len(converted)} tensors to {args.dst}')
    return 0
