"""Publish a trained checkpoint (``tools/model_converters/publish_model.py``, mmdet3d's name).

mmdet3d's behaviour (drop the optimizer, save, name the file ``<name>-<sha256[:8]>.pth``) plus
what a user of the file alone needs: the optimizer, the LR schedulers and the message hub are
removed; ``state_dict`` and ``meta`` stay (``meta.cfg``: the training config, so that the file
is enough for ``tools/test.py`` / ``tools/demo.py`` / ``export_onnx.py`` / the inferencer;
``meta.dataset_meta``). Added to ``meta`` (:data:`PUBLISHED_KEYS`): ``class_names``,
``input_size`` (W, H network input, pixels), ``normalization`` (``mean``, ``std``,
``bgr_to_rgb``), ``decode_mode``, ``monodle_plugin_version``, ``git_commit`` (of this checkout;
``-dirty`` when it has uncommitted changes, ``unknown`` outside git) and ``published_from``
(the source file name). The weights are loaded strictly into the model of the stored config
before anything is written (a checkpoint that does not match its own config is refused).
"""
from __future__ import annotations

import hashlib
import os
import os.path as osp
import subprocess
from typing import Any

import torch

from ..utils.checkpoint_loading import checkpoint_config, load_checkpoint_file
from ..utils.cli import CheckpointError

#: Top-level checkpoint entries that are kept; everything else (optimizer, param_schedulers,
#: message_hub, ...) is dropped.
KEPT_ENTRIES = ('state_dict', 'meta')
#: Keys added to ``meta``.
PUBLISHED_KEYS = ('class_names', 'input_size', 'normalization', 'decode_mode',
                  'monodle_plugin_version', 'git_commit', 'published_from')


def git_commit(repo: str | None = None) -> str:
    """``git rev-parse HEAD`` of the checkout holding this package (``-dirty`` with uncommitted
    changes to tracked files), or ``'unknown'`` (not a git checkout, git missing)."""
    repo = repo or osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    try:
        sha = subprocess.run(['git', '-C', repo, 'rev-parse', 'HEAD'], capture_output=True,
                             text=True, timeout=30, check=True).stdout.strip()
        dirty = subprocess.run(['git', '-C', repo, 'status', '--porcelain', '-uno'],
                               capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return 'unknown'
    return f'{sha}-dirty' if dirty else sha


def sha256_of(path: str) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def published_meta(checkpoint: str) -> dict:
    """The :data:`PUBLISHED_KEYS` of a checkpoint, from the model of its stored config (built on
    CPU, weights loaded strictly)."""
    from ..version import __version__
    from .onnx_export import build_model_for_export, export_meta, pipeline_input_size
    model, cfg = build_model_for_export(None, checkpoint)
    info = export_meta(model, pipeline_input_size(cfg))
    return dict(class_names=info['class_names'], input_size=info['input_size'],
                normalization=dict(mean=info['mean'], std=info['std'],
                                   bgr_to_rgb=info['bgr_to_rgb']),
                decode_mode=info['decode_mode'], monodle_plugin_version=__version__,
                git_commit=git_commit(), published_from=osp.basename(checkpoint))


def publish_checkpoint(in_file: str, out_file: str) -> str:
    """Write the published checkpoint; returns its path ``<out_file stem>-<sha256[:8]>.pth``.

    Raises:
        CheckpointError: unreadable, no ``meta.cfg`` or weights that do not match it.
    """
    ckpt: Any = load_checkpoint_file(in_file)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get('state_dict'), dict):
        raise CheckpointError(f'{in_file}: holds no state_dict (publish a checkpoint written by '
                              'tools/train.py)')
    checkpoint_config(in_file)  # one line if there is no usable meta.cfg
    meta = dict(ckpt.get('meta') or {})
    meta.update(published_meta(in_file))
    out = {'state_dict': ckpt['state_dict'], 'meta': meta}
    stem = out_file[:-4] if out_file.endswith('.pth') else out_file
    os.makedirs(osp.dirname(osp.abspath(stem)), exist_ok=True)
    tmp = stem + '.publishing.pth'
    torch.save(out, tmp)
    final = f'{stem}-{sha256_of(tmp)[:8]}.pth'
    os.replace(tmp, final)
    return final
