"""Checks of the command line against the config: unknown ``--cfg-options`` keys, ``--resume``.

``Config.merge_from_dict`` accepts any key: ``trian_cfg.max_epochs=1`` silently adds a new
top-level entry that nothing reads, and the run uses the config's value. A top-level key is only
read if the config defines it or the runner reads it, so an override of any other top-level key
is an error here. A nested key the config does not have, inside a registry-built dict
(``model.bbox_head.loss_depth.loss_weigth=1``), would fail much later with Python's
``TypeError: __init__() got an unexpected keyword argument`` naming neither the dotted key nor
the component: it is checked here against the component's arguments (its class's ``__init__``
and those it passes ``**kwargs`` to), with the close match and the full dotted path.
"""
from __future__ import annotations

import difflib
import inspect
import os.path as osp
import zipfile
from typing import Any

from .cli import CheckpointError, UserError
from .distill_switches import RECORD_KEY

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
    check_nested_option_keys(cfg, options, config_path)


#: keys of a component's dict that its builder takes out before calling the class (mmengine:
#: the registry's ``type`` / ``_scope_``, a hook's ``priority``, a scheduler's
#: ``convert_to_iter_based``, an optim wrapper's ``constructor`` / ``paramwise_cfg``)
BUILDER_KEYS = frozenset(('type', '_scope_', 'priority', 'convert_to_iter_based', 'constructor',
                          'paramwise_cfg'))
#: registries (of ``mmdet3d.registry``) a config's ``type`` is looked up in, in this order
_REGISTRY_NAMES = ('MODELS', 'TASK_UTILS', 'DATASETS', 'TRANSFORMS', 'DATA_SAMPLERS', 'HOOKS',
                   'METRICS', 'EVALUATOR', 'LOOPS', 'OPTIMIZERS', 'OPTIM_WRAPPERS',
                   'OPTIM_WRAPPER_CONSTRUCTORS', 'PARAM_SCHEDULERS', 'VISUALIZERS',
                   'VISBACKENDS', 'LOG_PROCESSORS')


def component_class(type_: Any) -> type | None:
    """The class a config's ``type`` names (a class, ``'Name'`` or ``'scope.Name'``), looked
    up in mmdet3d's registries; None when it is not a class or the name is unknown or
    ambiguous (two registries hold different classes of that name)."""
    if inspect.isclass(type_):
        return type_
    if not isinstance(type_, str):
        return None
    try:
        from mmdet3d import registry
    except ImportError:  # pragma: no cover - mmdet3d is a dependency
        return None
    found = []
    for name in _REGISTRY_NAMES:
        reg = getattr(registry, name, None)
        if reg is None:
            continue
        try:
            cls = reg.get(type_)
        except Exception:  # an unknown scope prefix, a failing import: not ours to report
            cls = None
        if inspect.isclass(cls) and cls not in found:
            found.append(cls)
    return found[0] if len(found) == 1 else None


def accepted_arguments(cls: type) -> set[str] | None:
    """Keyword arguments ``cls(...)`` accepts: its ``__init__``'s, and while an ``__init__``
    takes ``**kwargs``, those of the next ``__init__`` up the class hierarchy (where such
    ``**kwargs`` go in mmengine / mmdet components: ``super().__init__(**kwargs)``).
    ``torch.nn.Module`` and ``object`` take none. None when a signature cannot be read."""
    import torch
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass in (object, torch.nn.Module):
            return names
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        try:
            params = list(inspect.signature(init).parameters.values())[1:]  # without self
        except (TypeError, ValueError):
            return None
        names.update(p.name for p in params
                     if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names
    return names


def _child(node: Any, part: str) -> tuple[bool, Any]:
    """(found, value) of ``node[part]`` for a dict key or a list index."""
    if isinstance(node, dict):
        return (True, node[part]) if part in node else (False, None)
    if isinstance(node, (list, tuple)) and part.lstrip('-').isdigit():
        index = int(part)
        return (True, node[index]) if -len(node) <= index < len(node) else (False, None)
    return False, None


def check_nested_option_keys(cfg: Any, options: dict | None, config_path: str) -> None:
    """Raise :class:`UserError` for a ``--cfg-options`` key that adds an argument the
    component it lands in does not take (``model.bbox_head.loss_depth.loss_weigth=1``).

    The dotted key is followed through ``cfg`` (before the options are merged) to the first
    part the config does not have; when the dict holding it names a component (``type``, or
    a ``<dict>.type`` option of the same command line) whose arguments are known
    (:func:`accepted_arguments`) and the part is not one of them, the message names the full
    dotted key, the component, its closest argument and the option to give instead. Keys in
    dicts without ``type`` (read by code, not built) and components taking any keyword are
    not checked here.

    Args:
        cfg: the config before the options are merged.
        options: the parsed ``--cfg-options`` (dotted keys).
        config_path: named in the message.
    """
    for key, value in (options or {}).items():
        parts = str(key).split('.')
        node, container, depth = getattr(cfg, '_cfg_dict', cfg), None, 0
        for index, part in enumerate(parts):
            found, sub = _child(node, part)
            if not found:
                container, depth = node, index
                break
            node = sub
        if container is None or not isinstance(container, dict):
            continue  # the whole path exists (a change, not an addition), or under a list
        prefix = '.'.join(parts[:depth])
        type_ = options.get(f'{prefix}.type', container.get('type'))
        cls = component_class(type_) if type_ is not None else None
        accepted = accepted_arguments(cls) if cls is not None else None
        unknown = parts[depth]
        if not accepted or unknown in accepted or unknown in BUILDER_KEYS:
            continue
        close = difflib.get_close_matches(unknown, sorted(accepted), n=1, cutoff=0.6)
        rest = '.'.join(parts[depth + 1:])
        if close:
            fixed = '.'.join([*parts[:depth], close[0], *([rest] if rest else [])])
            hint = (f'did you mean {close[0]}? (--cfg-options '
                    f'{fixed}={_option_value(value)})')
        else:
            hint = 'its arguments are ' + ', '.join(sorted(accepted))
        raise UserError(f'--cfg-options {key}={_option_value(value)}: {cls.__name__} '
                        f'({prefix} in {config_path}) has no argument {unknown!r}, so '
                        f'building it would fail; {hint}')


def check_resume_target(work_dir: str, explicit: str | None = None) -> str:
    """The checkpoint ``--resume`` will load; a one-line error when there is nothing to resume.

    ``--resume`` without a path resumes from ``<work_dir>/last_checkpoint``. When the work dir
    has none (nothing was saved yet), this is an error, not a silent fresh start: drop
    ``--resume`` to start a new run.

    Args:
        work_dir: the run's work dir.
        explicit: the path given as ``--resume PATH`` (None: the work dir's latest).

    Returns:
        The checkpoint path (checked to exist, be non-empty and be a complete torch zip
        archive, or a torch legacy-format file that loads safely).
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
    _check_archive(path, ' (--resume)', 'interrupted save?',
                   'resume from an earlier epoch_N.pth with --resume PATH')
    return path


def _check_archive(path: str, role: str, cause: str, fix: str) -> None:
    """A zero-byte file, or a zip archive (torch's format since 1.6) without its central
    directory, is a truncated checkpoint: ``<path><role>: checkpoint is empty or truncated
    (<cause>); <fix>``. A file that is not a zip archive at all may be a valid checkpoint in
    torch's legacy format (``torch.save(..., _use_new_zipfile_serialization=False)``, which
    ``tools/test.py`` loads): it is read here once, safely (``weights_only=True`` with our
    allow-list, :func:`~monodle_plugin.utils.checkpoint_loading.load_checkpoint_file`), so that
    a damaged or refused one is named before the runner is built."""
    size = osp.getsize(path)
    if size and zipfile.is_zipfile(path):
        return
    with open(path, 'rb') as f:
        head = f.read(4)
    if size == 0 or head.startswith(b'PK'):
        raise CheckpointError(f'{path}{role}: checkpoint is empty or truncated ({cause}); {fix}')
    from .checkpoint_loading import load_checkpoint_file
    try:
        load_checkpoint_file(path)
    except CheckpointError as err:  # "<path>: problem; fix" -> "<path><role>: problem; fix"
        text = str(err)
        raise CheckpointError(f'{path}{role}{text[len(path):]}' if text.startswith(path)
                              else f'{path}{role}: {text}') from None


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





#: Top-level keys our runner reads itself (batch rule, distillation switches, the record of
#: an expansion of the switches: utils/distill_switches.py).
RUNNER_SWITCH_KEYS = frozenset(('total_batch_size', 'use_da3_depth', 'distill', RECORD_KEY))


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


__all__ = ['BUILDER_KEYS', 'RUNNER_KEYS', 'RUNNER_SWITCH_KEYS', 'accepted_arguments',
           'check_cfg_option_keys', 'check_load_from', 'check_nested_option_keys',
           'check_resume_target', 'check_top_level_overrides', 'component_class']
