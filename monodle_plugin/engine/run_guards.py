"""What ``MonoDLERunner`` checks and adds besides the batch rule and the distillation switches,
under any tool (ours, mmdet3d's stock ``tools/train.py`` / ``tools/test.py``):

- :func:`guard_config`, on the config before anything is built: a top-level config variable
  changed after the file was read (``--cfg-options data_root=...``) is an error naming the
  keys to set (:func:`monodle_plugin.utils.config_checks.check_top_level_overrides`);
- :func:`guard_runner`, on the built runner: ``FiniteLossHook`` (a NaN / infinite loss stops
  training before a checkpoint is written).
"""
from __future__ import annotations

from ..utils.config_checks import check_top_level_overrides


def guard_config(cfg) -> None:
    """Checks of ``cfg`` (an mmengine ``Config``, read only) before the runner is built."""
    check_top_level_overrides(cfg)


def guard_runner(runner) -> None:
    """Register the guard hooks on ``runner`` unless the config already has them."""
    from .hooks import FiniteLossHook
    if not any(isinstance(h, FiniteLossHook) for h in runner.hooks):
        runner.register_hook(FiniteLossHook())


__all__ = ['guard_config', 'guard_runner']
