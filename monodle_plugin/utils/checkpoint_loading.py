"""Safe, strict checkpoint loading.

**Safe.** Every checkpoint is read with ``torch.load(weights_only=True)``: tensors, containers and
numbers only; a file that names any other Python object (a crafted ``__reduce__`` payload, say) is
refused before anything runs. mmengine checkpoints also hold a few non-tensor objects (the message
hub's ``HistoryBuffer`` with numpy arrays, numpy generator states); :func:`allow_checkpoint_globals`
adds exactly those to torch's allow-list (:data:`CHECKPOINT_SAFE_GLOBALS`, found with
``torch.serialization.get_unsafe_globals_in_checkpoint`` on our own checkpoints). The one global
there that could run code, ``builtins.getattr`` (``HistoryBuffer`` pickles its statistics methods
as ``getattr(HistoryBuffer, 'mean')``), is replaced by :func:`_history_buffer_getattr`, which
returns only those methods. Loading a checkpoint never runs code from it.

**Strict.** :func:`load_weights_strict` loads a checkpoint for evaluation: any missing or
unexpected key or shape mismatch is a :class:`~monodle_plugin.utils.cli.CheckpointError` naming the
checkpoint, the config and the first offending keys (mmengine's ``load_checkpoint`` only logs
them and evaluates random weights); ``allow_partial=True`` loads the matching tensors and logs
what was left out. :func:`skip_backbone_pretrained` switches off the backbone's pretrained-weight
loading (YOLO ``.pt``, DLA-34 ImageNet ``init_cfg``) when a full checkpoint is loaded afterwards.
"""
from __future__ import annotations

import ast
import logging
import os.path as osp
import pickle
import zipfile
from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from torch import nn

from .cli import CheckpointError

#: Number of offending keys quoted in a mismatch message.
SHOWN_KEYS = 5


_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """``getattr`` restricted to ``HistoryBuffer``'s statistics methods (see module docstring)."""
    from mmengine.logging import HistoryBuffer
    # the built-in methods are registered lazily (first HistoryBuffer()), custom ones by
    # HistoryBuffer.register_statistics
    if obj is HistoryBuffer and (name in _HISTORY_BUFFER_METHODS
                                 or name in HistoryBuffer._statistics_methods):
        return getattr(obj, name)
    raise pickle.UnpicklingError(f'refused getattr({obj!r}, {name!r}) while loading a checkpoint')


def checkpoint_safe_globals() -> list:
    """The allow-list for our (mmengine) checkpoints beyond torch's defaults.

    ``HistoryBuffer`` (message hub scalars), numpy arrays and scalars (their reconstructors,
    class and the dtypes that occur: float64/float32/int64/uint32 -- the MT19937 state) and the
    restricted ``getattr``. Nothing here can call an arbitrary function.
    """
    from mmengine.logging import HistoryBuffer
    try:
        from numpy._core.multiarray import _reconstruct, scalar  # numpy >= 2
    except ImportError:
        from numpy.core.multiarray import _reconstruct, scalar
    dtypes = [type(np.dtype(t)) for t in (np.float64, np.float32, np.int64, np.int32, np.uint32,
                                          np.bool_)]
    return [HistoryBuffer, np.ndarray, np.dtype, _reconstruct, scalar, *dtypes,
            (_reconstruct, 'numpy.core.multiarray._reconstruct'),
            (_reconstruct, 'numpy._core.multiarray._reconstruct'),
            (scalar, 'numpy.core.multiarray.scalar'),
            (scalar, 'numpy._core.multiarray.scalar'),
            (_history_buffer_getattr, 'builtins.getattr'),
            (_history_buffer_getattr, '__builtin__.getattr')]


_ALLOWED = False


def allow_checkpoint_globals() -> None:
    """Add :func:`checkpoint_safe_globals` to torch's ``weights_only`` allow-list (idempotent).

    Process-wide, so that mmengine's own ``torch.load`` (``--resume``, ``load_from``), which
    uses torch's default ``weights_only=True``, reads our checkpoints too.
    """
    global _ALLOWED
    if not _ALLOWED:
        torch.serialization.add_safe_globals(checkpoint_safe_globals())
        _ALLOWED = True


def load_checkpoint_file(path: str, map_location: str | torch.device = 'cpu') -> Any:
    """``torch.load(path, weights_only=True)`` with our allow-list and one-line errors.

    Raises:
        CheckpointError: missing, empty, truncated or not a torch file, or it references a
            Python object outside the allow-list (it is then never unpickled).
    """
    if not osp.isfile(path):
        raise CheckpointError(f'{path}: checkpoint not found')
    if osp.getsize(path) == 0:
        raise CheckpointError(f'{path}: checkpoint is empty (0 bytes): the save was interrupted '
                              'or the copy failed; use another checkpoint')
    allow_checkpoint_globals()
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(refusal_message(path, err)) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as err:
        raise CheckpointError(unreadable_message(path, err)) from None


def refused_object(err: BaseException) -> str:
    """What torch's ``weights_only`` unpickler refused (``Unsupported global: GLOBAL
    builtins.open``), without its advice: torch suggests re-running with
    ``weights_only=False``, which would run the code a crafted file holds."""
    text = str(err).split('WeightsUnpickler error:')[-1].strip()
    first = text.split('\n')[0]
    # torch appends how to allow-list the global / switch weights_only off: drop it
    for cut in (' was not an allowed global', '. Please use', '. Re-running',
                ' Please file an issue', '(1) ', 'Check the documentation'):
        if cut in first:
            first = first.split(cut)[0]
    first = ' '.join(first.split()).rstrip(' .;,')
    return first or type(err).__name__


def refusal_message(path: str, err: BaseException, role: str = '') -> str:
    """The one line for a checkpoint that references Python objects outside the allow-list
    (``role``: how the file was given, e.g. ``' (--resume)'``)."""
    return (f'{path}{role}: refused to load: it references Python objects that are not '
            f'tensors or plain data ({refused_object(err)}); loading it could run code from '
            'the file, so it is not read. Re-save its state_dict from a trusted Python session '
            '(torch.save(model.state_dict(), ...)) or convert it with '
            'tools/model_converters/convert_monodle_checkpoint.py')


def unreadable_message(path: str, err: BaseException, role: str = '') -> str:
    """The one line for a checkpoint torch cannot read (truncated, corrupt, not torch)."""
    return (f'{path}{role}: not a readable torch checkpoint ({type(err).__name__}: '
            f'{" ".join(str(err).split())[:200]}); the file is truncated or corrupt: use '
            'another checkpoint or save it again')


def extract_state_dict(ckpt: Any, path: str) -> OrderedDict:
    """The model weights of a loaded checkpoint (``state_dict`` / ``model`` entry or the dict
    itself), with DDP's ``module.`` prefix removed."""
    if not isinstance(ckpt, dict):
        raise CheckpointError(f'{path}: holds a {type(ckpt).__name__}, not a dict of tensors')
    if 'state_dict' not in ckpt and isinstance(ckpt.get('model_state'), dict):
        raise CheckpointError(
            f'{path}: an official MonoDLE checkpoint (its weights are under model_state, in '
            'the official module names); convert it first: python '
            f'tools/model_converters/convert_monodle_checkpoint.py {path} CONVERTED.pth, then '
            'give CONVERTED.pth')
    state = ckpt
    for key in ('state_dict', 'model'):
        if isinstance(ckpt.get(key), dict):
            state = ckpt[key]
            break
    out = OrderedDict()
    for k, v in state.items():
        if isinstance(v, torch.Tensor):
            out[k[len('module.'):] if k.startswith('module.') else k] = v
    return out


def _unwrap(model: nn.Module) -> nn.Module:
    from mmengine.model import is_model_wrapper
    return model.module if is_model_wrapper(model) else model


def _first(keys: list) -> str:
    more = f', ... ({len(keys)} in all)' if len(keys) > SHOWN_KEYS else ''
    return ', '.join(str(k) for k in keys[:SHOWN_KEYS]) + more


def compare_state_dicts(model_state: dict, ckpt_state: dict) -> tuple[list, list, list]:
    """(missing keys, unexpected keys, shape mismatches ``(key, ckpt shape, model shape)``)."""
    missing = [k for k in model_state if k not in ckpt_state]
    unexpected = [k for k in ckpt_state if k not in model_state]
    shapes = [(k, tuple(v.shape), tuple(model_state[k].shape)) for k, v in ckpt_state.items()
              if k in model_state and tuple(v.shape) != tuple(model_state[k].shape)]
    return missing, unexpected, shapes


def describe_mismatch(missing: list, unexpected: list, shapes: list) -> str:
    """The output of :func:`compare_state_dicts` as one phrase naming the first keys."""
    parts = []
    if missing:
        parts.append(f'{len(missing)} missing key(s): {_first(missing)}')
    if unexpected:
        parts.append(f'{len(unexpected)} unexpected key(s): {_first(unexpected)}')
    if shapes:
        parts.append(f'{len(shapes)} shape mismatch(es): ' + _first(
            [f'{k} {c} in checkpoint vs {m} in model' for k, c, m in shapes]))
    return '; '.join(parts)


def load_weights_strict(model: nn.Module, checkpoint: str, config: str | None = None,
                        allow_partial: bool = False,
                        logger: logging.Logger | None = None) -> dict:
    """Load a checkpoint's weights into ``model``; every key must match (names and shapes).

    Args:
        model: the detector (a DDP wrapper is unwrapped).
        checkpoint: path of an mmengine checkpoint or a plain state dict file.
        config: the config the model was built from (quoted in the error message).
        allow_partial: load the tensors that match and log the rest instead of failing.
        logger: where the partial-load summary goes (default: this module's logger).

    Returns:
        ``dict(missing=[...], unexpected=[...], shape_mismatch=[...])`` (empty lists when
        strict).

    Raises:
        CheckpointError: the file cannot be read safely, holds no weights, holds NaN /
            infinite weights, or (unless ``allow_partial``) does not match the model.
    """
    state = extract_state_dict(load_checkpoint_file(checkpoint), checkpoint)
    module = _unwrap(model)
    model_state = module.state_dict()
    missing, unexpected, shapes = compare_state_dicts(model_state, state)
    where = f' and the model of {config}' if config else ' and the model'
    if not state:
        raise CheckpointError(f'{checkpoint}: holds no weights (empty state_dict); evaluating '
                              'it would use random weights. Give the trained checkpoint')
    nonfinite = [k for k, v in state.items() if v.is_floating_point() and k in model_state
                 and not bool(torch.isfinite(v).all())]
    if nonfinite:
        raise CheckpointError(
            f'{checkpoint}: {len(nonfinite)} weight tensor(s) hold NaN / infinite values '
            f'({_first(nonfinite)}): the training diverged before this checkpoint was saved '
            'and its predictions would be meaningless; evaluate an earlier checkpoint')
    if (missing or unexpected or shapes) and not allow_partial:
        raise CheckpointError(
            f'{checkpoint}: does not match{where}: '
            f'{describe_mismatch(missing, unexpected, shapes)}. Use the config the '
            'checkpoint was trained with (DLA-34 and YOLO checkpoints are not interchangeable), '
            'or pass --allow-partial-load to load only the matching tensors')
    bad = {k for k, _, _ in shapes}
    module.load_state_dict({k: v for k, v in state.items()
                            if k in model_state and k not in bad}, strict=not allow_partial)
    if allow_partial and (missing or unexpected or shapes):
        (logger or logging.getLogger(__name__)).warning(
            f'{checkpoint}: PARTIAL load (--allow-partial-load): {len(missing)} model tensors '
            f'keep their initial values (first: {_first(missing)}), {len(unexpected)} '
            f'checkpoint tensors unused, {len(shapes)} shape mismatches skipped')
    return dict(missing=missing, unexpected=unexpected, shape_mismatch=shapes)


def skip_backbone_pretrained(model_cfg: Any) -> bool:
    """Switch off pretrained-weight loading of ``model_cfg.backbone`` in place.

    For a model whose weights all come from a checkpoint loaded afterwards: Ultralytics
    backbones (and any backbone with a ``pretrained`` argument) get ``pretrained=False``
    (architecture from the shipped yaml, no ``yolov8n.pt`` needed); a ``Pretrained``
    ``init_cfg`` (DLA-34 ImageNet file) becomes ``None``. Returns True if anything changed.
    """
    backbone = model_cfg.get('backbone') if hasattr(model_cfg, 'get') else None
    if not hasattr(backbone, 'get'):
        return False
    changed = False
    if backbone.get('pretrained') or (backbone.get('type') == 'UltralyticsBackbone'
                                      and backbone.get('pretrained', True)):
        backbone['pretrained'] = False
        changed = True
    init_cfg = backbone.get('init_cfg')
    if hasattr(init_cfg, 'get') and init_cfg.get('type') == 'Pretrained':
        backbone['init_cfg'] = None
        changed = True
    return changed


# ---------------------------------------------------------------------- the config inside
def _literal(node: ast.AST, where: str) -> Any:
    """A config value: literals, lists / tuples / dicts / sets and ``dict(key=value, ...)``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
            and node.func.id == 'dict' and not node.args \
            and all(kw.arg is not None for kw in node.keywords):
        return {kw.arg: _literal(kw.value, where) for kw in node.keywords}
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {_literal(k, where): _literal(v, where) for k, v in zip(node.keys, node.values)}
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        items = [_literal(e, where) for e in node.elts]
        return (tuple(items) if isinstance(node, ast.Tuple)
                else set(items) if isinstance(node, ast.Set) else items)
    try:
        return ast.literal_eval(node)  # constants, -1, 1e-3, True / None
    except ValueError:
        raise CheckpointError(
            f'{where}: line {getattr(node, "lineno", "?")} holds an expression that is not plain '
            f'data ({ast.unparse(node)[:60]!r}); it is never run: give the config file '
            'as well') from None


def parse_config_text(text: str, where: str) -> dict:
    """The ``name = value`` assignments of a dumped config (``Config.pretty_text``) as a dict,
    **without running it** (``Config.fromstring`` would execute the text).

    Raises:
        CheckpointError: a statement other than ``name = <plain data>`` (named by line).
    """
    try:
        tree = ast.parse(text)
    except SyntaxError as err:
        raise CheckpointError(f'{where}: not a Python config ({err.msg}, line {err.lineno}); '
                              'give the config file as well') from None
    cfg = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)):
            raise CheckpointError(f'{where}: line {node.lineno} is not "name = value" (a dumped '
                                  'config holds assignments only); give the config file as well')
        cfg[node.targets[0].id] = _literal(node.value, where)
    return cfg


def checkpoint_config(checkpoint: str) -> Any:
    """The training config stored in an mmengine checkpoint (``meta['cfg']``, the text the
    Runner dumped) as an mmengine ``Config``, parsed as plain data (never executed).

    Raises:
        CheckpointError: the file cannot be read safely, or holds no ``meta.cfg`` (a converted
            official / plain state-dict checkpoint): then the config file must be given.
    """
    from mmengine.config import Config
    ckpt = load_checkpoint_file(checkpoint)
    meta = ckpt.get('meta') if isinstance(ckpt, dict) else None
    text = meta.get('cfg') if isinstance(meta, dict) else None
    if not isinstance(text, str) or not text.strip():
        raise CheckpointError(f'{checkpoint}: holds no config (meta.cfg; a converted or plain '
                              'state-dict checkpoint): give the config file before it, e.g. '
                              'configs/monodle/monodle_dla34_kitti.py CKPT')
    return Config(parse_config_text(text, f'{checkpoint}: meta.cfg'))


def _plain(value: Any) -> Any:
    """ConfigDict / tuple -> dict / list, for comparing two configs."""
    if hasattr(value, 'items'):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def config_differences(a: Any, b: Any, prefix: str = '') -> list[str]:
    """Dotted keys whose values differ between two (nested) configs, in key order."""
    a, b = _plain(a), _plain(b)
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in list(a) + [k for k in b if k not in a]:
            name = f'{prefix}.{key}' if prefix else str(key)
            if key not in a or key not in b:
                out.append(name)
            else:
                out.extend(config_differences(a[key], b[key], name))
        return out
    return [] if a == b else [prefix or '(root)']


def resolve_config(config: str | None, checkpoint: str, cfg_options: dict | None = None,
                   logger: logging.Logger | None = None) -> tuple[Any, str]:
    """The config of a run from a config file and / or the checkpoint (``meta.cfg``).

    Args:
        config: a config file, or None to use the one stored in ``checkpoint``.
        checkpoint: the checkpoint file.
        cfg_options: ``--cfg-options`` overrides (keys checked against the config).
        logger: where the one-line note goes when ``config``'s model differs from the
            checkpoint's (default: printed).

    Returns:
        ``(Config, name)``: ``name`` is the config file, or ``<checkpoint>:meta.cfg``; the
        config's distillation switches expanded into their pieces (as ``MonoDLERunner`` does:
        e.g. the uncertainty branch of a +DA3+U model).
    """
    from mmengine.config import Config

    from .config_checks import check_cfg_option_keys
    from .distill_switches import apply_distill_switches
    if config is None:
        cfg, name = checkpoint_config(checkpoint), f'{checkpoint}:meta.cfg'
    else:
        if not osp.isfile(config):
            raise FileNotFoundError(f'config file not found: {config}')
        cfg, name = Config.fromfile(config), config
        stored = None
        if osp.isfile(checkpoint):
            try:
                stored = checkpoint_config(checkpoint)
            except CheckpointError:  # no meta.cfg: nothing to compare
                stored = None
        if stored is not None and 'model' in stored:
            apply_distill_switches(stored)
            diff = config_differences(stored.model, _expanded(cfg).model)
            if diff:
                note = (f'note: the model of {config} differs from the one {checkpoint} was '
                        f'trained with (its meta.cfg) at {", ".join(diff[:SHOWN_KEYS])}'
                        f'{f", ... ({len(diff)} keys)" if len(diff) > SHOWN_KEYS else ""}; '
                        f'using {config} (give the checkpoint alone to use its own)')
                (logger.warning if logger else print)(note)
    if cfg_options:
        check_cfg_option_keys(cfg, cfg_options, name)
        cfg.merge_from_dict(cfg_options)
    apply_distill_switches(cfg)  # the pieces a run of this config has (no runner here)
    return cfg, name


def _expanded(cfg: Any) -> Any:
    """A copy of ``cfg`` with its distillation switches expanded into their pieces."""
    import copy

    from .distill_switches import apply_distill_switches
    cfg = copy.deepcopy(cfg)
    apply_distill_switches(cfg)
    return cfg


def split_config_checkpoint(paths: list[str], what: str = 'CKPT') -> tuple[str | None, str]:
    """``[CONFIG] CKPT`` positional arguments of a tool -> ``(config or None, checkpoint)``.

    Raises:
        UserError: not one or two paths, or the config is not a ``.py`` file.
    """
    from .cli import UserError
    if len(paths) == 1:
        return None, paths[0]
    if len(paths) == 2 and paths[0].endswith('.py'):
        return paths[0], paths[1]
    if len(paths) == 2 and not osp.exists(paths[0]):
        raise FileNotFoundError(f'config file not found: {paths[0]}')
    raise UserError(f'expected [CONFIG.py] {what}, got {" ".join(paths)}: the config (a .py '
                    'file) is optional, the checkpoint holds its own (meta.cfg)')


__all__ = ['allow_checkpoint_globals', 'checkpoint_config', 'checkpoint_safe_globals',
           'compare_state_dicts', 'config_differences', 'describe_mismatch',
           'extract_state_dict', 'load_checkpoint_file', 'load_weights_strict',
           'parse_config_text', 'refusal_message', 'refused_object', 'resolve_config',
           'skip_backbone_pretrained', 'split_config_checkpoint', 'unreadable_message']
