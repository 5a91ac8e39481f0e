"""The DA3 distillation switches of a config (``use_da3_depth``, ``distill``) and the pieces
they stand for (configs/_base_/distill/da3_distill.py).

A +DA3 config writes out three pieces: ``LoadDA3Depth`` after ``MonoDLEAffineAug`` in the
training pipeline, ``model.bbox_head.loss_depth_distill`` and a ``DistillWeightHook`` in
``custom_hooks``. mmengine evaluates a config once, so a switch changed later
(``--cfg-options distill.lambda=0``, under any tool) would not reach the pieces on its own:
:func:`apply_distill_switches`, called by ``MonoDLERunner.from_cfg`` before anything is built,
writes the switches into the pieces (the switches win; every changed field is reported) or,
with ``use_da3_depth=False`` / ``distill.lambda=0``, removes the three pieces (the baseline).
"""
from __future__ import annotations

import difflib
import math

#: the ``distill`` switches, in the order configs/_base_/distill/da3_distill.py lists them
DISTILL_KEYS = ('lambda_', 'loss_type', 'foreground_weight', 'foreground',
                'silog_variance_factor', 'silog_weighted', 'depth_dir', 'max_depth',
                'on_missing', 'warmup_iters', 'off_after_epoch', 'use_uncertainty',
                'scale_by_crop', 'interpolation')
#: top-level keys whose misspellings are errors (a near miss would be silently ignored)
SWITCH_TOP_KEYS = ('total_batch_size', 'use_da3_depth', 'distill')

# piece field <- switch
_LOADER_FIELDS = {'depth_dir': 'depth_dir', 'max_depth': 'max_depth',
                  'on_missing': 'on_missing', 'scale_by_crop': 'scale_by_crop',
                  'interpolation': 'interpolation'}
_LOSS_FIELDS = {'loss_weight': 'lambda_', 'loss_type': 'loss_type',
                'foreground': 'foreground', 'foreground_weight': 'foreground_weight',
                'variance_factor': 'silog_variance_factor', 'silog_weighted': 'silog_weighted'}
# distill.use_uncertainty=True: the seed's Kendall loss (no loss_type / silog fields) and the
# head's dense uncertainty branch (the seed's model.use_distill_uncertainty)
_UNCERTAINTY_LOSS = 'UncertaintyDepthDistillLoss'
_PLAIN_LOSS = 'DepthDistillLoss'
_UNCERTAINTY_LOSS_FIELDS = {'loss_weight': 'lambda_', 'foreground': 'foreground',
                            'foreground_weight': 'foreground_weight'}
_HOOK_FIELDS = {'warmup_iters': 'warmup_iters', 'off_after_epoch': 'off_after_epoch'}


def check_top_level_keys(cfg) -> None:
    """Raise ``KeyError`` for a top-level key that is a near miss of a switch we own.

    ``--cfg-options total_batch_sise=1`` would otherwise add an unused key and train with the
    config's batch.
    """
    for key in list(cfg.keys()):
        if key in SWITCH_TOP_KEYS:
            continue
        close = difflib.get_close_matches(key, SWITCH_TOP_KEYS, n=1, cutoff=0.8)
        if close:
            raise KeyError(f'config key {key!r} is unknown: did you mean {close[0]!r}? (the '
                           f'batch / distillation switches are {", ".join(SWITCH_TOP_KEYS)})')


def normalise_distill(distill: dict) -> dict:
    """Validated copy of the ``distill`` switches with the seed's ``lambda`` renamed ``lambda_``.

    Raises:
        KeyError: an unknown key (naming the known ones) or a missing one.
        ValueError: a negative lambda.
    """
    distill = dict(distill)
    if 'lambda' in distill:  # the seed's spelling; a Python keyword mmengine cannot dump
        distill['lambda_'] = distill.pop('lambda')
    known = ', '.join(('lambda (or lambda_)',) + DISTILL_KEYS[1:])
    unknown = sorted(set(distill) - set(DISTILL_KEYS))
    if unknown:
        hints = [difflib.get_close_matches(k, DISTILL_KEYS + ('lambda',), n=1) for k in unknown]
        hint = ''.join(f'; {k!r}: did you mean {h[0]!r}?' for k, h in zip(unknown, hints) if h)
        raise KeyError(f'unknown distill switch(es) {", ".join(map(repr, unknown))}{hint} '
                       f'(known: {known})')
    missing = [k for k in DISTILL_KEYS if k not in distill]
    if missing:
        raise KeyError(f'distill switches missing: {", ".join(missing)} (inherit '
                       f'configs/_base_/distill/da3_distill.py, which sets them all)')
    for key, low, optional in _NUMERIC_SWITCHES:
        distill[key] = _number(distill[key], key, low, optional)
    return distill


#: numeric switches: (key, smallest allowed value, None allowed)
_NUMERIC_SWITCHES = (('lambda_', 0.0, False), ('foreground_weight', 0.0, False),
                     ('silog_variance_factor', 0.0, False), ('max_depth', 0.0, True),
                     ('warmup_iters', 0, False))


def _number(value, key: str, low: float, optional: bool):
    """``value`` as a finite number >= ``low`` (ints stay ints), else a ``ValueError`` naming
    ``distill.<key>``: ``nan`` would read as 0 (distillation silently off), ``inf`` trains to
    NaN weights, ``'abc'`` would fail later without the key's name."""
    name = 'distill.' + ('lambda' if key == 'lambda_' else key)
    if value is None and optional:
        return None
    try:
        number = value if isinstance(value, (int, float)) and not isinstance(value, bool) \
            else float(value)
    except (TypeError, ValueError):
        number = None
    if number is None or not math.isfinite(number) or number < low or isinstance(value, bool):
        none = ' (or None)' if optional else ''
        raise ValueError(f'{name} must be >= {low:g} and finite{none}, got {value!r}: set '
                         f'--cfg-options {name}=<number>')
    return number


def _sync(piece: dict, fields: dict, distill: dict, where: str, changes: list) -> None:
    for field, switch in fields.items():
        old, new = piece.get(field, '<unset>'), distill[switch]
        if old != new:
            changes.append(f'{where}.{field}: {old!r} -> {new!r} (distill.{switch})')
            piece[field] = new


def apply_distill_switches(cfg) -> list[str]:
    """Make the pieces of ``cfg`` (an mmengine ``Config``, changed in place) follow its switches.

    Configs without switches are left alone. Returns one line per change made (empty when the
    config already agrees with its switches).

    Raises:
        KeyError: unknown / missing switches, only one of ``use_da3_depth`` / ``distill``
            present (a ``distill.*`` option on a config without distillation).
        ValueError: no ``MonoDLEAffineAug`` step to put ``LoadDA3Depth`` after.
    """
    check_top_level_keys(cfg)
    has_flag, has_switches = 'use_da3_depth' in cfg, 'distill' in cfg
    if not has_flag and not has_switches:
        return []
    if not (has_flag and has_switches):
        raise KeyError('the config sets ' + ('use_da3_depth' if has_flag else 'distill.*') +
                       ' but has no ' + ('distill' if has_flag else 'use_da3_depth') +
                       ' (not a +DA3 config): use a +DA3 config (e.g. '
                       'configs/monodle_yolo8_da3.py) or change '
                       'model.bbox_head.loss_depth_distill')
    distill = normalise_distill(cfg.distill)
    cfg.distill = distill
    on = bool(cfg.use_da3_depth) and float(distill['lambda_']) > 0
    changes: list[str] = []
    pipeline = list(cfg.train_dataloader.dataset.pipeline)
    hooks = list(cfg.get('custom_hooks', None) or [])
    loaders = [i for i, s in enumerate(pipeline) if s['type'] == 'LoadDA3Depth']
    hook_ids = [i for i, h in enumerate(hooks) if h['type'] == 'DistillWeightHook']
    head = cfg.model.bbox_head
    if not on:
        why = 'use_da3_depth=False' if not cfg.use_da3_depth else 'distill.lambda=0'
        if loaders:
            changes.append(f'train pipeline: LoadDA3Depth removed ({why})')
        if head.get('loss_depth_distill', None) is not None:
            changes.append(f'model.bbox_head.loss_depth_distill removed ({why})')
        if hook_ids:
            changes.append(f'custom_hooks: DistillWeightHook removed ({why})')
        cfg.train_dataloader.dataset.pipeline = [
            s for i, s in enumerate(pipeline) if i not in loaders]
        head.loss_depth_distill = None
        cfg.custom_hooks = [h for i, h in enumerate(hooks) if i not in hook_ids]
        _sync_uncertainty_branch(head, False, why, changes)
        return changes

    if not loaders:
        affine = [i for i, s in enumerate(pipeline) if s['type'] == 'MonoDLEAffineAug']
        if not affine:
            raise ValueError('DA3 distillation: the training pipeline has no MonoDLEAffineAug '
                             'step to put LoadDA3Depth after')
        pipeline.insert(affine[0] + 1, dict(type='LoadDA3Depth'))
        loaders = [affine[0] + 1]
        changes.append('train pipeline: LoadDA3Depth added after MonoDLEAffineAug')
    for i in loaders:
        _sync(pipeline[i], _LOADER_FIELDS, distill, 'LoadDA3Depth', changes)
    cfg.train_dataloader.dataset.pipeline = pipeline

    loss = head.get('loss_depth_distill', None)
    if loss is None:
        loss = dict(type=_PLAIN_LOSS)
        changes.append('model.bbox_head.loss_depth_distill added')
    loss = dict(loss)
    use_unc = bool(distill['use_uncertainty'])
    wanted = _UNCERTAINTY_LOSS if use_unc else _PLAIN_LOSS
    if loss.get('type') != wanted:
        changes.append(f'model.bbox_head.loss_depth_distill.type: {loss.get("type")!r} -> '
                       f'{wanted!r} (distill.use_uncertainty={use_unc})')
        loss = dict(type=wanted)
    fields = _UNCERTAINTY_LOSS_FIELDS if use_unc else _LOSS_FIELDS
    _sync(loss, fields, distill, 'model.bbox_head.loss_depth_distill', changes)
    head.loss_depth_distill = loss
    _sync_uncertainty_branch(head, use_unc, f'distill.use_uncertainty={use_unc}', changes)

    if not hook_ids:
        hooks.append(dict(type='DistillWeightHook'))
        hook_ids = [len(hooks) - 1]
        changes.append('custom_hooks: DistillWeightHook added')
    for i in hook_ids:
        hooks[i] = dict(hooks[i])
        _sync(hooks[i], _HOOK_FIELDS, distill, 'DistillWeightHook', changes)
    cfg.custom_hooks = hooks
    return changes


def _sync_uncertainty_branch(head, wanted: bool, why: str, changes: list) -> None:
    """``model.bbox_head.use_distill_uncertainty`` follows ``distill.use_uncertainty`` (the
    branch exists only when its loss uses it: an unused branch would break DDP, and with
    distillation off the model is exactly the baseline)."""
    if bool(head.get('use_distill_uncertainty', False)) != wanted:
        changes.append(f'model.bbox_head.use_distill_uncertainty: '
                       f'{head.get("use_distill_uncertainty", False)!r} -> {wanted!r} ({why})')
        if wanted:
            head.use_distill_uncertainty = True
        else:  # the head's default, so that the config equals the baseline's
            head.pop('use_distill_uncertainty')
