"""Checks of the command line against the config: unknown ``--cfg-options`` keys, ``--resume``.

``Config.merge_from_dict`` accepts any key: ``trian_cfg.max_epochs=1`` silently adds a new
top-level entry that nothing reads, and the run uses the config's value. Nested typos inside a
registry-built dict (``train_cfg.max_epoch``) already fail when the component is built
(unexpected keyword argument); a top-level key is only read if the config defines it or the
runner reads it, so an override of any other top-level key is an error here.
"""
from __future__ import annotations

import difflib
import os.path as osp
import zipfile
from typing import Any

from .cli import CheckpointError, UserError

#: Top-level keys mmengine's Runner (and our tools) read even when a config leaves them out.
RUNNER_KEYS = frozenset((
    'model', 'work_dir', 'train_dataloader', 'val_dataloader', 'test_dataloader', 'train_cfg',
    'val_cfg', 'test_cfg', 'auto_scale_lr', 'optim_wrapper', 'param_scheduler', 'val_evaluator',
    'test_evaluator', 'default_hooks', 'custom_hooks', 'data_preprocessor', 'load_from', 'resume',
    'launcher', 'env_cfg', 'log_processor', 'log_level', 'visualizer', 'default_scope',
    'randomness', 'experiment_name', 'runner_type', 'model_wrapper_cfg', 'find_unused_parameters',
    'compile', 'strategy', 'sync_bn', 'cfg', 'total_batch_size', 'activation_checkpointing',
    'efficient_conv_bn_eval'))


def check_cfg_option_keys(cfg: Any, options: dict | None, config_path: str) -> None:
    """Raise :class:`UserError` for a ``--cfg-options`` key whose top level nothing reads.

    Args:
        cfg: the config before the options are merged.
        options: the parsed ``--cfg-options`` (``DictAction``: dotted keys or nested dicts).
        config_path: named in the message.
    """
    if not options:
        return
    known = set(cfg.keys()) | RUNNER_KEYS
    for key in options:
        top = str(key).split('.')[0]
        if top in known:
            continue
        close = difflib.get_close_matches(top, sorted(known), n=1)
        hint = f'did you mean {close[0]}?' if close else 'check the spelling'
        raise UserError(f'--cfg-options {key}: {config_path} has no key {top!r} and the runner '
                        f'does not read it, so the option would be ignored; {hint}')


def check_resume_target(work_dir: str, explicit: str | None = None) -> str:
    """The checkpoint ``--resume`` will load; a one-line error when there is nothing to resume.

    ``--resume`` without a path resumes from ``<work_dir>/last_checkpoint``. When the work dir
    has none (nothing was saved yet), this is an error, not a silent fresh start: drop
    ``--resume`` to start a new run.

    Args:
        work_dir: the run's work dir.
        explicit: the path given as ``--resume PATH`` (None: the work dir's latest).

    Returns:
        The checkpoint path (checked to exist, be non-empty and be a torch zip archive).
    """
    if explicit is None:
        pointer = osp.join(work_dir, 'last_checkpoint')
        if not osp.isfile(pointer):
            raise UserError(f'--resume: nothing to resume in {work_dir} (no last_checkpoint '
                            'file: no checkpoint was saved there). Drop --resume to start a new '
                            'training, or give --resume PATH/TO/epoch_N.pth')
        with open(pointer) as f:
            path = f.read().strip()
        source = f'{pointer} names {path}, which'
    else:
        path, source = explicit, f'--resume {explicit}:'
    if not osp.isfile(path):
        raise CheckpointError(f'{source} does not exist; give --resume PATH/TO/epoch_N.pth')
    _check_archive(path, '', 'interrupted save?',
                   'resume from an earlier epoch_N.pth with --resume PATH')
    return path


def _check_archive(path: str, role: str, cause: str, fix: str) -> None:
    """A zero-byte or non-zip file (torch saves zip archives) is a truncated checkpoint:
    ``<path><role>: checkpoint is empty or truncated (<cause>); <fix>``."""
    if osp.getsize(path) == 0 or not zipfile.is_zipfile(path):
        raise CheckpointError(f'{path}{role}: checkpoint is empty or truncated ({cause}); {fix}')


def check_load_from(path: str) -> str:
    """``load_from`` (fine-tuning; mmdet3d's stock ``tools/test.py`` puts its checkpoint there):
    a local, non-empty torch archive, checked before the runner is built.

    mmengine would download a URL (``https://``, ``open-mmlab://``, ...) and reports a missing,
    zero-byte or truncated file deep inside ``torch.load`` without its name; here each is one
    line naming the file and the fix.
    """
    if '://' in str(path):
        raise CheckpointError(f'load_from={path}: a URL; nothing is downloaded at run time: '
                              'download the file yourself and set load_from to its local path')
    if not osp.isfile(path):
        raise CheckpointError(f'load_from={path}: file not found; give an existing checkpoint '
                              '(or load_from=None to start from the config\'s initialisation)')
    _check_archive(path, ' (load_from)', 'interrupted save or download?', 'copy it again')
    return path





#: Top-level keys our runner reads itself (batch rule, distillation switches).
RUNNER_SWITCH_KEYS = frozenset(('total_batch_size', 'use_da3_depth', 'distill'))


def _same(a: Any, b: Any) -> bool:
    """Config values equal, tuples and lists alike (``--cfg-options`` gives tuples, a dump
    lists)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if type(a) is not type(b) and (isinstance(a, bool) or isinstance(b, bool)):
        return False
    return a == b


def _option_value(value: Any) -> str:
    """``value`` as ``--cfg-options KEY=VALUE`` writes it (mmengine's DictAction syntax)."""
    if isinstance(value, str):
        return value
    if isinstance(value, tuple):
        return '(' + ','.join(_option_value(v) for v in value) + ')'
    if isinstance(value, list):
        return '[' + ','.join(_option_value(v) for v in value) + ']'
    return repr(value)


def _paths_holding(tree: Any, value: Any, prefix: str = ''):
    """Dotted paths (list items by index, as ``--cfg-options`` takes them) under ``tree`` whose
    value equals ``value``."""
    if prefix and _same(tree, value):
        yield prefix
        return
    items = (tree.items() if isinstance(tree, dict) else
             enumerate(tree) if isinstance(tree, (list, tuple)) else ())
    for key, sub in items:
        yield from _paths_holding(sub, value, f'{prefix}.{key}' if prefix else str(key))


def check_top_level_overrides(cfg: Any) -> None:
    """Raise :class:`UserError` when a top-level key that no component reads was changed
    after the config file was read (``--cfg-options data_root=...`` under any tool).

    mmengine evaluates a config's variables once, when the file is read: ``data_root``,
    ``class_names``, ``input_size``, ``max_epochs``, ... were already copied into the keys that
    use them (``train_dataloader.dataset.data_root``, ``train_cfg.max_epochs``, ...), so
    changing the variable afterwards reaches nothing (the dumped config shows the new value,
    the run uses the old one). The file is read again and every top-level key outside
    :data:`RUNNER_KEYS` / :data:`RUNNER_SWITCH_KEYS` is compared with it; a changed or added
    one is an error whose fix is the ``--cfg-options`` that set the keys holding the file's
    value (for a number, the keys of the same name first: a value such as ``2`` also occurs
    by coincidence).

    Args:
        cfg: the config about to be built (an mmengine ``Config`` with the ``filename`` it was
            read from; a config without a readable file is not checked).
    """
    filename = getattr(cfg, 'filename', None)
    if not filename or not osp.isfile(filename):
        return
    from mmengine.config import Config
    original = Config.fromfile(filename)
    read = RUNNER_KEYS | RUNNER_SWITCH_KEYS
    for key in cfg.keys():
        if key in read or (key in original and _same(cfg[key], original[key])):
            continue
        new = _option_value(cfg[key])
        if key not in original:
            close = difflib.get_close_matches(key, sorted(read | set(original.keys())), n=1)
            hint = f'did you mean {close[0]}?' if close else 'check the spelling'
            raise UserError(f'{filename}: top-level key {key}={new} is not in the config and '
                            f'nothing reads it, so it would be ignored; {hint}')
        old = original[key]
        paths = [p for top in original.keys() if top in read
                 for p in _paths_holding(original[top], old, top)]
        maybe: list[str] = []
        if isinstance(old, (int, float)) and not isinstance(old, bool):
            named = [p for p in paths if p.rsplit('.', 1)[-1] == key]
            if named:  # a number also occurs by coincidence: the same-named keys are sure
                paths, maybe = named, [p for p in paths if p not in named]
        if paths:
            fix = ('set the keys that hold its value instead: --cfg-options ' +
                   ' '.join(f'{p}={new}' for p in paths[:8]) +
                   (f' (and {len(paths) - 8} more)' if len(paths) > 8 else ''))
        else:
            fix = 'no key holds its value: set the component keys you mean instead'
        if maybe:
            fix += (f' (other keys holding {_option_value(old)}, perhaps from it: ' +
                    ', '.join(maybe[:6]) + (', ...' if len(maybe) > 6 else '') + ')')
        raise UserError(f'{filename}: {key} was changed to {new} after the config was read '
                        f'(--cfg-options?), but it is a variable the file already used '
                        f'(value {_option_value(old)}), so the change would reach nothing; '
                        f'{fix}')
__all__ = ['RUNNER_KEYS', 'RUNNER_SWITCH_KEYS', 'check_cfg_option_keys', 'check_load_from',
           'check_resume_target', 'check_top_level_overrides']
