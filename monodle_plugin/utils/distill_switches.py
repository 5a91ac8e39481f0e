"""The DA3 distillation switches of a config (``use_da3_depth``, ``distill``,
configs/_base_/distill/da3_distill.py) and their expansion into the pieces they stand for.

A +DA3 config writes only the switches. :func:`apply_distill_switches`, called by
``MonoDLERunner.from_cfg`` before anything is built (under any tool: ours and mmdet3d's stock
``tools/train.py`` / ``tools/test.py`` build the runner of ``runner_type``), and by the tools
that build a model from a config file without a runner, expands them into three pieces:
``LoadDA3Depth`` after ``MonoDLEAffineAug`` in the training pipeline,
``model.bbox_head.loss_depth_distill`` (+ ``use_distill_uncertainty``) and a
``DistillWeightHook`` in ``custom_hooks``; with ``use_da3_depth=False`` / ``distill.lambda=0``
there are none (the baseline). So ``--cfg-options distill.lambda=0`` reaches every piece, and
the config the runner dumps into the work dir holds the pieces that ran. A piece written in a
config is accepted only where it agrees with the switches; a conflict is a one-line error.
"""
from __future__ import annotations

import difflib
import math

#: the ``distill`` switches, in the order configs/_base_/distill/da3_distill.py lists them
DISTILL_KEYS = ('lambda_', 'loss_type', 'foreground_weight', 'foreground',
                'silog_variance_factor', 'silog_weighted', 'depth_dir', 'max_depth',
                'on_missing', 'warmup_iters', 'off_after_epoch', 'use_uncertainty',
                'scale_by_crop', 'interpolation')
#: switches added later, with the value a config without them (an older dumped config, a
#: checkpoint's) means
OPTIONAL_DISTILL_KEYS = {'cache': False}
#: top-level key where an expansion records the switches it expanded: a config dumped by a run
#: holds the pieces, and this tells them from pieces written by hand, so that the dumped config
#: runs again with other switches (``--cfg-options distill.lambda=0`` on it works too)
RECORD_KEY = 'distill_expanded_from'
#: top-level keys whose misspellings are errors (a near miss would be silently ignored)
SWITCH_TOP_KEYS = ('total_batch_size', 'use_da3_depth', 'distill')

# piece field <- switch
_LOADER_FIELDS = {'depth_dir': 'depth_dir', 'max_depth': 'max_depth',
                  'on_missing': 'on_missing', 'scale_by_crop': 'scale_by_crop',
                  'interpolation': 'interpolation', 'cache': 'cache'}
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
    names = DISTILL_KEYS + tuple(OPTIONAL_DISTILL_KEYS)
    known = ', '.join(('lambda (or lambda_)',) + names[1:])
    unknown = sorted(set(distill) - set(names))
    if unknown:
        hints = [difflib.get_close_matches(k, names + ('lambda',), n=1) for k in unknown]
        hint = ''.join(f'; {k!r}: did you mean {h[0]!r}?' for k, h in zip(unknown, hints) if h)
        raise KeyError(f'unknown distill switch(es) {", ".join(map(repr, unknown))}{hint} '
                       f'(known: {known})')
    missing = [k for k in DISTILL_KEYS if k not in distill]
    if missing:
        raise KeyError(f'distill switches missing: {", ".join(missing)} (inherit '
                       f'configs/_base_/distill/da3_distill.py, which sets them all)')
    for key, default in OPTIONAL_DISTILL_KEYS.items():
        distill.setdefault(key, default)
    for key, low, optional in _NUMERIC_SWITCHES:
        distill[key] = _number(distill[key], key, low, optional)
    for key in _BOOL_SWITCHES:
        if not isinstance(distill[key], bool):  # 'false' / 0 would read as a truth value
            raise ValueError(f'distill.{key} must be True or False, got {distill[key]!r}: set '
                             f'--cfg-options distill.{key}=True (or False)')
    return distill


#: numeric switches: (key, smallest allowed value, None allowed)
_NUMERIC_SWITCHES = (('lambda_', 0.0, False), ('foreground_weight', 0.0, False),
                     ('silog_variance_factor', 0.0, False), ('max_depth', 0.0, True),
                     ('warmup_iters', 0, False))
#: switches that are True or False
_BOOL_SWITCHES = ('silog_weighted', 'use_uncertainty', 'scale_by_crop', 'cache')


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


def expand_distill(use_da3_depth: bool, distill: dict) -> dict | None:
    """The DA3 pieces that ``use_da3_depth`` / the (normalised) ``distill`` switches stand for,
    or None when distillation is off (``use_da3_depth=False`` or ``distill.lambda=0``).

    Returns:
        ``dict(loader=LoadDA3Depth step, loss=model.bbox_head.loss_depth_distill,
        hook=DistillWeightHook, uncertainty=model.bbox_head.use_distill_uncertainty)``.
    """
    if not use_da3_depth or float(distill['lambda_']) == 0:
        return None
    unc = bool(distill['use_uncertainty'])
    loss_fields = _UNCERTAINTY_LOSS_FIELDS if unc else _LOSS_FIELDS
    return dict(
        loader=_piece('LoadDA3Depth', _LOADER_FIELDS, distill),
        loss=_piece(_UNCERTAINTY_LOSS if unc else _PLAIN_LOSS, loss_fields, distill),
        hook=_piece('DistillWeightHook', _HOOK_FIELDS, distill),
        uncertainty=unc)


def _piece(type_: str, fields: dict, distill: dict) -> dict:
    return dict(type=type_, **{field: distill[switch] for field, switch in fields.items()})


def _switch_of(field: str, piece_type: str) -> str:
    """``distill.<switch>`` that writes ``field`` of a piece of type ``piece_type``."""
    for fields in (_LOADER_FIELDS, _HOOK_FIELDS, _UNCERTAINTY_LOSS_FIELDS
                   if piece_type == _UNCERTAINTY_LOSS else _LOSS_FIELDS):
        if field in fields:
            return 'distill.' + ('lambda' if fields[field] == 'lambda_' else fields[field])
    return 'distill.use_uncertainty'  # the loss type


def _conflict(name: str, what: str, fix: str) -> ValueError:
    return ValueError(f'{name}: {what}: the distill switches write the DA3 pieces '
                      f'(configs/_base_/distill/da3_distill.py); {fix}')


def _merge(hand: dict, wanted: dict, where: str, name: str) -> dict:
    """``wanted`` with the fields of a piece written by hand: only where they agree (a field
    the switches do not own, e.g. ``LoadDA3Depth.data_root``, is kept)."""
    if hand.get('type', wanted['type']) != wanted['type']:
        switch = _switch_of('type', wanted['type'])
        raise _conflict(name, f"{where}.type={hand.get('type')!r} conflicts with "
                        f"{switch} (which means type={wanted['type']!r})",
                        f'remove {where} from the config')
    for field, value in hand.items():
        if field in wanted and value != wanted[field]:
            switch = _switch_of(field, wanted['type'])
            raise _conflict(name, f'{where}.{field}={value!r} conflicts with {switch}='
                            f'{wanted[field]!r}', f'remove {where}.{field} from the config '
                            f'(to keep {value!r}: --cfg-options {switch}={value!r})')
    return dict(wanted, **{k: v for k, v in hand.items() if k not in wanted})


def apply_distill_switches(cfg) -> list[str]:
    """Expand the switches of ``cfg`` (an mmengine ``Config``, changed in place) into the DA3
    pieces, or check that there are none when distillation is off.

    A +DA3 config writes only the switches; this writes ``LoadDA3Depth`` after
    ``MonoDLEAffineAug`` in the training pipeline, ``model.bbox_head.loss_depth_distill``
    (and ``use_distill_uncertainty`` with ``distill.use_uncertainty``) and a
    ``DistillWeightHook`` into ``custom_hooks``. A piece written in the config by hand is kept
    where it agrees with the switches; the pieces of an earlier expansion (a config a run
    dumped, recorded under ``RECORD_KEY``) are replaced. Idempotent. Configs without switches
    are left alone.

    Returns:
        One line per piece written (or one line saying distillation is off).

    Raises:
        KeyError: unknown / missing switches, only one of ``use_da3_depth`` / ``distill``
            present (a ``distill.*`` option on a config without distillation).
        ValueError: a piece in the config conflicts with a switch, or a piece is present
            while distillation is off (one line naming the field, the switch and the fix);
            no ``MonoDLEAffineAug`` step to put ``LoadDA3Depth`` after.
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
    name = getattr(cfg, 'filename', None) or 'config'
    _drop_expanded(cfg)
    cfg[RECORD_KEY] = dict(use_da3_depth=bool(cfg.use_da3_depth), distill=dict(distill))
    wanted = expand_distill(bool(cfg.use_da3_depth), distill)
    pipeline = list(cfg.train_dataloader.dataset.pipeline)
    hooks = list(cfg.get('custom_hooks', None) or [])
    loaders = [i for i, s in enumerate(pipeline) if s['type'] == 'LoadDA3Depth']
    hook_ids = [i for i, h in enumerate(hooks) if h['type'] == 'DistillWeightHook']
    head = cfg.model.bbox_head
    loss = head.get('loss_depth_distill', None)
    branch = head.get('use_distill_uncertainty', None)

    if wanted is None:
        why = 'use_da3_depth=False' if not cfg.use_da3_depth else 'distill.lambda=0'
        present = (['LoadDA3Depth in the training pipeline'] * bool(loaders) +
                   ['model.bbox_head.loss_depth_distill'] * (loss is not None) +
                   ['DistillWeightHook in custom_hooks'] * bool(hook_ids) +
                   ['model.bbox_head.use_distill_uncertainty=True'] * bool(branch))
        if present:
            raise _conflict(name, f'{", ".join(present)} written in the config but '
                            f'distillation is off ({why})', 'remove it from the config')
        if branch is not None:  # False written out: the head's default, as the baseline's
            head.pop('use_distill_uncertainty')
        return [f'off ({why}): no LoadDA3Depth, loss_depth_distill or DistillWeightHook']

    changes: list[str] = []
    if not loaders:
        affine = [i for i, s in enumerate(pipeline) if s['type'] == 'MonoDLEAffineAug']
        if not affine:
            raise ValueError(f'{name}: DA3 distillation: the training pipeline has no '
                             'MonoDLEAffineAug step to put LoadDA3Depth after')
        pipeline.insert(affine[0] + 1, dict(wanted['loader']))
        changes.append(f'train pipeline: {_text(wanted["loader"])} after MonoDLEAffineAug')
    for i in loaders:
        pipeline[i] = _merge(pipeline[i], wanted['loader'], 'LoadDA3Depth', name)
    cfg.train_dataloader.dataset.pipeline = pipeline

    if loss is None:
        changes.append(f'model.bbox_head.loss_depth_distill={_text(wanted["loss"])}')
        loss = {}
    head.loss_depth_distill = _merge(loss, wanted['loss'], 'model.bbox_head.loss_depth_distill',
                                     name)
    if branch is not None and bool(branch) != wanted['uncertainty']:
        raise _conflict(name, f'model.bbox_head.use_distill_uncertainty={branch!r} conflicts '
                        f'with distill.use_uncertainty={wanted["uncertainty"]!r}',
                        'remove it from the config (to keep it: --cfg-options '
                        f'distill.use_uncertainty={bool(branch)!r})')
    if wanted['uncertainty']:
        if branch is None:
            changes.append('model.bbox_head.use_distill_uncertainty=True')
        head.use_distill_uncertainty = True
    elif branch is not None:  # False written out: the head's default
        head.pop('use_distill_uncertainty')

    if not hook_ids:
        hooks.append(dict(wanted['hook']))
        changes.append(f'custom_hooks: {_text(wanted["hook"])}')
    for i in hook_ids:
        hooks[i] = _merge(hooks[i], wanted['hook'], 'DistillWeightHook', name)
    cfg.custom_hooks = hooks
    return changes


def _drop_expanded(cfg) -> None:
    """Remove from ``cfg`` the pieces an earlier expansion wrote (those equal to the expansion
    of ``cfg[RECORD_KEY]``); pieces written or edited by hand stay (and are checked)."""
    record = cfg.pop(RECORD_KEY, None)
    old = record and expand_distill(bool(record['use_da3_depth']),
                                    normalise_distill(record['distill']))
    if not old:
        return
    data = cfg.train_dataloader.dataset
    data.pipeline = [s for s in data.pipeline if s != old['loader']]
    hooks = [h for h in cfg.get('custom_hooks', None) or [] if h != old['hook']]
    if hooks:
        cfg.custom_hooks = hooks
    else:  # the expansion added the key (no config of the package sets it)
        cfg.pop('custom_hooks', None)
    head = cfg.model.bbox_head
    if head.get('loss_depth_distill', None) == old['loss']:
        head.loss_depth_distill = None
    if old['uncertainty'] and head.get('use_distill_uncertainty', None) is True:
        head.pop('use_distill_uncertainty')


def _text(piece: dict) -> str:
    """``Type(field=value, ...)``: a piece as one log line."""
    args = ', '.join(f'{k}={v!r}' for k, v in piece.items() if k != 'type')
    return f'{piece["type"]}({args})'
