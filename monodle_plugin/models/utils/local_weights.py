"""Pretrained backbone weights come from local files only: one clear error when they are not.

Registry backbones load ImageNet weights in two ways, both checked here before anything is
built, so that a missing file is one line naming the file and the fix (the Ultralytics path
does the same in ``UltralyticsBackbone``):

* ``init_cfg=dict(type='Pretrained', checkpoint=PATH)`` (mmdet ``ResNet``, mmpretrain
  ``ConvNeXt``, mmdet3d ``DLANet``): loaded by ``init_weights`` at the start of training, so it
  is checked there (:func:`check_pretrained_init_cfg`), not when a model is built for testing.
* timm through ``mmpretrain.TIMMBackbone``: timm loads at construction, from
  ``pretrained_cfg_overlay=dict(file=PATH)`` (``pretrained=True``) or ``checkpoint_path``;
  ``pretrained=True`` without a local file would download from the Hugging Face hub, which is
  refused (:func:`check_timm_backbone_cfg`).
"""
from __future__ import annotations

import os.path as osp

#: How to turn the ImageNet DLA-34 file into the one the DLA-34 configs load.
DLA34_HINT = ('for DLA-34 convert the ImageNet file: python tools/convert_monodle_checkpoint.py '
              '--imagenet-dla34 dla34-ba72cf86.pth {path}; ')


def _is_url(path: str) -> bool:
    return '://' in path


def check_pretrained_init_cfg(init_cfg, backbone_type: str = '') -> None:
    """Raise if a ``Pretrained`` init config names a URL or a file absent on this machine.

    Args:
        init_cfg: the backbone's ``init_cfg`` (dict, list of dicts or None).
        backbone_type: registered type of the backbone, only quoted in the message.
    """
    cfgs = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
    for cfg in cfgs:
        if not isinstance(cfg, dict) or cfg.get('type') != 'Pretrained':
            continue
        path = str(cfg.get('checkpoint', ''))
        if _is_url(path):
            raise ValueError(
                f'MonoDLE: backbone {backbone_type} init_cfg.checkpoint={path!r} is a URL; '
                'weights are never downloaded: fetch the file once, put it in checkpoints/ and '
                'give its local path (or set model.backbone.init_cfg=None for random '
                'initialisation)')
        if not osp.isfile(path):
            hint = DLA34_HINT.format(path=path) if 'DLANet' in backbone_type else ''
            raise FileNotFoundError(
                f'MonoDLE: backbone weights {path!r} not found on this machine (nothing is '
                f'downloaded): {hint}put the file at that path (the config says where it comes '
                'from), or set model.backbone.init_cfg=None to train from random weights')


def check_timm_backbone_cfg(cfg: dict) -> None:
    """Raise if a ``TIMMBackbone`` config would download weights or names a missing file.

    Args:
        cfg: the backbone config (``type`` ends with ``TIMMBackbone``).
    """
    name = cfg.get('model_name', '?')
    overlay = cfg.get('pretrained_cfg_overlay') or {}
    local = overlay.get('file') if isinstance(overlay, dict) else None
    checkpoint = cfg.get('checkpoint_path') or ''
    pretrained = bool(cfg.get('pretrained', False))
    for path, key in ((local if pretrained else None, 'pretrained_cfg_overlay.file'),
                      (checkpoint, 'checkpoint_path')):
        if path and (_is_url(str(path)) or not osp.isfile(str(path))):
            raise FileNotFoundError(
                f'TIMMBackbone({name}): pretrained weights {str(path)!r} ({key}) not found on '
                'this machine (nothing is downloaded): put the file there (e.g. model.safetensors '
                f'of the Hugging Face repository timm/{name}), or set model.backbone.'
                'pretrained=False for random initialisation')
    if pretrained and not local:
        raise ValueError(
            f'TIMMBackbone({name}): pretrained=True without a local file would download from the '
            'Hugging Face hub, which this project never does: give '
            "pretrained_cfg_overlay=dict(file='checkpoints/<file>.safetensors'), or set "
            'pretrained=False for random initialisation')


def check_backbone_weights(backbone_cfg: dict | None) -> None:
    """Build-time check of a backbone config (timm's construction-time loading)."""
    if isinstance(backbone_cfg, dict) and str(backbone_cfg.get('type', '')).endswith(
            'TIMMBackbone'):
        check_timm_backbone_cfg(backbone_cfg)
