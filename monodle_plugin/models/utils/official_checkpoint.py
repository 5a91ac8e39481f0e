"""Official MonoDLE and seed-system (MonoDDLE) checkpoints -> this plugin's state dict.

Usage (both tools are shims into ``monodle_plugin.commands.convert_monodle_checkpoint``):
    python tools/convert_monodle_checkpoint.py checkpoint_epoch_140.pth monodle_dla34.pth
    python tools/convert_monodle_checkpoint.py seed_yolo8.pth out.pth \\
        --config configs/ablation/monodle_yolo8_kitti.py
    python tools/convert_monodle_checkpoint.py --imagenet-dla34 dla34-ba72cf86.pth dla34_mm.pth

The layout (DLA-34 / YOLO, with or without the uncertainty branch) is detected from the keys
(``--source`` overrides the backbone); without ``--config`` the result is checked against the
config of the detected variant (:data:`DEFAULT_CONFIGS`). The file is read with
``torch.load(weights_only=True)``. ``--imagenet-dla34`` converts the ImageNet DLA-34 file MonoDLE
starts from into a backbone checkpoint for ``init_cfg=dict(type='Pretrained', checkpoint=OUT)``.

Both systems save ``{'epoch', 'model_state', 'optimizer_state'}``; ``model_state`` is the
``CenterNet3D`` state dict:

- ``backbone.*``: DLA-34 (``base_layer``, ``level0..5`` with ``bn*`` BatchNorms, ImageNet
  ``fc``) in official MonoDLE and the seed's DLA-34 runs; the whole Ultralytics
  ``DetectionModel`` under ``backbone.model.model.<layer>.*`` (``UltralyticsBackboneAdapter``,
  detection head included) in the seed's YOLO runs.
- ``neck.*``: DLAUp (``ida_*``, same names here) or the seed's ``NativeNeck`` (``laterals``,
  ``smooth``, ``upsample_to_stride4``).
- seven top-level branches ``heatmap.*`` ... ``heading.*``, plus ``dense_depth_uncertainty.*``
  when the seed trained with ``model.use_distill_uncertainty`` (commit ca005eb).

Mapping: DLA ``bn{1,2}`` / ``root.bn`` -> mmdet3d ``DLANet``'s ``norm{1,2}`` / ``root.norm``
and the unused ``fc`` dropped; ``backbone.model.model.<i>.*`` -> ``UltralyticsBackbone``'s
``backbone.model.<i>.*``, layers after the deepest one the config's backbone reads (the YOLO
detection head) dropped; ``neck.*`` unchanged; ``<branch>.*`` -> ``bbox_head.<branch>.*``.
Checked against the model built from a config: any unknown, missing or mis-shaped key aborts the
conversion (no partial checkpoint is ever written): :class:`ConversionError`, which the entry
points print as one line ``error: ...`` with exit status 2 (``utils/cli.py``).
"""
from __future__ import annotations

import re
from collections import OrderedDict
from pathlib import Path
from typing import Optional

import torch

from ...utils.cli import CheckpointError

#: the seven MonoDLE output branches, top-level modules of ``CenterNet3D``
HEAD_BRANCHES = ('heatmap', 'offset_2d', 'size_2d', 'depth', 'offset_3d', 'size_3d', 'heading')
#: the seed's dense depth-uncertainty branch (``model.use_distill_uncertainty``)
UNCERTAINTY_BRANCH = 'dense_depth_uncertainty'
#: ``--source`` values: which backbone layout the checkpoint has ('auto': from the keys)
SOURCES = ('auto', 'dla34', 'yolo')
#: config whose model a detected variant loads into strictly, (backbone, uncertainty) -> path
DEFAULT_CONFIGS = {
    ('dla34', False): 'configs/monodle/monodle_dla34_kitti.py',
    ('dla34', True): 'configs/monodle/monodle_dla34_da3u_kitti.py',
    ('yolo', False): 'configs/ablation/monodle_yolo8_kitti.py',
    ('yolo', True): 'configs/ablation/monodle_yolo8_da3u_kitti.py',
}

_BN_RENAMES = ((re.compile(r'\.bn(\d)\.'), r'.norm\1.'),
               (re.compile(r'\.root\.bn\.'), '.root.norm.'))
_YOLO_PREFIX = 'backbone.model.model.'
_YOLO_LAYER = re.compile(r'^backbone\.model\.(\d+)\.')


class ConversionError(CheckpointError):
    """Raised when a checkpoint cannot be converted completely (a user error: the message
    names the file and the fix)."""


def _strip_module(key: str) -> str:
    return key[len('module.'):] if key.startswith('module.') else key


def detect_source(state: dict, backbone: str = 'auto') -> dict:
    """Which system layout a ``model_state`` has, from its keys.

    Args:
        state: the checkpoint's ``model_state``.
        backbone: 'auto' (from the keys) or the layout to assume ('dla34' / 'yolo').

    Returns:
        dict(backbone='dla34' | 'yolo', uncertainty=bool, neck='DLAUp' | 'NativeNeck').

    Raises:
        ConversionError: neither a DLA-34 nor an Ultralytics backbone.
    """
    keys = [_strip_module(k) for k in state]
    if backbone != 'auto':
        if backbone not in SOURCES:
            raise ConversionError(f'source must be one of {SOURCES}, got {backbone!r}')
    elif any(k.startswith(_YOLO_PREFIX) for k in keys):
        backbone = 'yolo'
    elif any(k.startswith(('backbone.base_layer.', 'backbone.level')) for k in keys):
        backbone = 'dla34'
    else:
        found = sorted({k.split('.', 2)[0] + '.' + k.split('.', 2)[1]
                        for k in keys if k.count('.') >= 1})[:6]
        raise ConversionError('neither a DLA-34 (backbone.base_layer.*, backbone.level*) nor an '
                              f'Ultralytics backbone ({_YOLO_PREFIX}*) in model_state (found '
                              f'{found}); give --source if the keys are renamed')
    return dict(backbone=backbone,
                uncertainty=any(k.startswith(UNCERTAINTY_BRANCH + '.') for k in keys),
                neck='NativeNeck' if any(k.startswith('neck.laterals.') for k in keys)
                else 'DLAUp')


def map_key(key: str, source: str = 'dla34') -> Optional[str]:
    """Official / seed key -> plugin key; None for keys deliberately dropped.

    Args:
        key: a ``model_state`` key (a leading ``module.`` is ignored).
        source: 'dla34' or 'yolo' (the backbone layout).

    Raises:
        ConversionError: for a key that belongs to no known part.
    """
    key = _strip_module(key)
    if key.startswith('backbone.'):
        if source == 'yolo':
            if key.startswith(_YOLO_PREFIX):
                return 'backbone.model.' + key[len(_YOLO_PREFIX):]
            raise ConversionError(f'unknown key {key!r}')
        if key.startswith('backbone.fc.'):
            return None
        for pattern, repl in _BN_RENAMES:
            key = pattern.sub(repl, key)
        return key
    if key.startswith('neck.'):
        return key
    branch = key.split('.', 1)[0]
    if branch in HEAD_BRANCHES or branch == UNCERTAINTY_BRANCH:
        return f'bbox_head.{key}'
    raise ConversionError(f'unknown key {key!r}')


def _yolo_layer(key: str) -> Optional[int]:
    match = _YOLO_LAYER.match(key)
    return int(match.group(1)) if match else None


def convert_state_dict(official: dict, expected: Optional[dict] = None,
                       source: str = 'auto') -> OrderedDict:
    """Convert a ``model_state`` dict; check it against ``expected`` (name -> tensor).

    Args:
        official: the checkpoint's ``model_state``.
        expected: state dict of the target model; None skips the check (and keeps every YOLO
            layer).
        source: one of :data:`SOURCES`.

    Raises:
        ConversionError: listing every unknown key, missing key and shape mismatch.
    """
    if source not in SOURCES:
        raise ConversionError(f'source must be one of {SOURCES}, got {source!r}')
    if source == 'auto':
        source = detect_source(official)['backbone']
    converted, unknown = OrderedDict(), []
    for key, value in official.items():
        try:
            new_key = map_key(key, source)
        except ConversionError:
            unknown.append(key)
            continue
        if new_key is not None:
            converted[new_key] = value
    if source == 'yolo' and expected is not None:
        read = [i for i in map(_yolo_layer, expected) if i is not None]
        last = max(read) if read else -1
        # layers the backbone never runs: the Ultralytics detection head and anything after
        # the deepest feature layer (UltralyticsBackbone drops them too)
        converted = OrderedDict((k, v) for k, v in converted.items()
                                if (_yolo_layer(k) or 0) <= last)
    groups = {'unknown key': unknown}
    if expected is not None:
        groups['missing key'] = [k for k in expected if k not in converted]
        groups['unexpected key (no such parameter in the model)'] = [
            k for k in converted if k not in expected]
        groups['shape mismatch'] = [
            f'{k} {tuple(v.shape)} vs model {tuple(expected[k].shape)}'
            for k, v in converted.items()
            if k in expected and tuple(v.shape) != tuple(expected[k].shape)]
    _raise_problems(groups, source)
    return converted


def _raise_problems(groups: dict, source: str, shown: int = 8) -> None:
    """One ConversionError listing up to ``shown`` keys of each kind of problem."""
    total = sum(len(v) for v in groups.values())
    if not total:
        return
    lines = []
    for kind, keys in groups.items():
        lines += [f'{kind}: {k}' for k in keys[:shown]]
        if len(keys) > shown:
            lines.append(f'... and {len(keys) - shown} more {kind}s')
    raise ConversionError(
        f'{total} problem(s), nothing written (checkpoint read as {source!r}; give the --config '
        'of the model it was trained with, and --source if the layout is not detected):\n  '
        + '\n  '.join(lines))


def convert_imagenet_dla34(state: dict, expected: Optional[dict] = None) -> OrderedDict:
    """ImageNet DLA-34 (``base_layer.*``, ``level*``, ``fc.*``) -> ``DLANet`` state dict."""
    prefixed = {f'backbone.{k}': v for k, v in state.items()}
    converted = convert_state_dict(prefixed, source='dla34')
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
    """State dict of the model (or only its backbone) built from ``config``.

    Only names and shapes matter: an Ultralytics backbone is built with ``pretrained=False``
    (its ``.pt`` file need not be on this machine).
    """
    from mmdet3d.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import monodle_plugin  # noqa: F401  (registers)
    if not Path(config).is_file():
        in_repo = Path(__file__).resolve().parents[2] / config  # repo-relative default paths
        if not in_repo.is_file():
            raise ConversionError(f'config {config}: no such file (give --config)')
        config = str(in_repo)
    cfg = Config.fromfile(config)
    from ...utils.distill_switches import apply_distill_switches
    apply_distill_switches(cfg)  # the uncertainty branch of a +DA3+U config
    init_default_scope(cfg.get('default_scope', 'mmdet3d'))
    if cfg.model.backbone.get('type') == 'UltralyticsBackbone':
        cfg.model.backbone.pretrained = False
    if part == 'backbone':
        return MODELS.build(cfg.model.backbone).state_dict()
    return MODELS.build(cfg.model).state_dict()


def load_checkpoint_file(path: str, key: Optional[str]) -> dict:
    """Read a checkpoint safely (``weights_only=True``: no code runs from the file).

    Returns:
        the dict under ``key``; for None the ``state_dict`` entry or the whole dict.

    Raises:
        ConversionError: missing file, a file that needs unpickling of arbitrary objects, or
            no ``key`` entry.
    """
    if not Path(path).is_file():
        raise ConversionError(f'{path}: no such file')
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # pickle.UnpicklingError with torch's explanation
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConversionError(f'{path}: cannot be read with torch.load(weights_only=True) '
                              f'({first}); re-save its model_state with plain tensors') from None
    if key is None:
        return ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else ckpt
    if not isinstance(ckpt, dict) or key not in ckpt:
        found = list(ckpt)[:5] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ConversionError(f'{path}: no {key!r} entry (found {found}); is this an official '
                              'MonoDLE or MonoDDLE checkpoint (checkpoint_epoch_*.pth)?')
    return ckpt[key]
