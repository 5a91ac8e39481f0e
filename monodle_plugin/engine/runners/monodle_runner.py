"""MonoDLERunner: mmengine's Runner plus the rules a MonoDLE config relies on, whatever tool
builds it (``runner_type='MonoDLERunner'`` in configs/_base_/default_runtime.py; our
tools/train.py and mmdet3d's stock ``tools/train.py`` / ``mim train`` both call
``RUNNERS.build(cfg)`` when ``runner_type`` is set).

mmengine's Runner has no notion of a total batch that stays fixed across GPU counts, of
switches that stand for several config pieces, or of CPU-only distributed runs; the rest is
the stock Runner, unchanged.
"""
from __future__ import annotations

import copy

from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from ...utils.distill_switches import apply_distill_switches
from ..batch_lr_scaling import apply_batch_plan, plan_batch, world_size_from_env
from ..cpu_distributed import prepare_distributed
from ..dataloader_settings import resolve_dataloader_settings
from ..run_guards import guard_config, guard_runner, own_run_folder


# Registered in mmengine's root RUNNERS: the tools build the runner before any default scope
# exists, so a runner only in mmdet3d's child registry would not be found by name.
@RUNNERS.register_module()
class MonoDLERunner(Runner):
    """``Runner`` whose :meth:`from_cfg` first applies, on a copy of the config:

    1. the DA3 distillation switches (``use_da3_depth``, ``distill.*``) expanded into the
       pieces they stand for (a piece in the config that conflicts with them, unknown keys
       and near misses of ``total_batch_size`` / ``use_da3_depth`` / ``distill`` are errors;
       the pieces are logged and dumped with the config), see
       :mod:`monodle_plugin.utils.distill_switches`;
    2. the batch rule: ``train_dataloader.batch_size='auto'`` becomes
       ``total_batch_size // world_size`` (world size from ``WORLD_SIZE`` / ``SLURM_NTASKS`` /
       ``OMPI_COMM_WORLD_SIZE`` for ``launcher`` pytorch / slurm / mpi); the lr then follows
       mmengine's ``auto_scale_lr``, see :mod:`monodle_plugin.engine.batch_lr_scaling`;
    3. on a machine without CUDA, a gloo process group and CPU DDP wrapping
       (:mod:`monodle_plugin.engine.cpu_distributed`);
    4. every ``EncodeMonoDLETargets`` step without ``bbox_coder`` gets the model's
       ``model.bbox_head.bbox_coder`` (targets encoded in the data workers with the head's
       settings, :func:`~monodle_plugin.datasets.transforms.encode_monodle_targets.
       fill_target_coders`).

    After building it logs the effective batch / lr and the run record (``run_info.json``),
    and with more than one process registers ``GlobalLossLogHook`` (logged losses = those of
    the total batch). Attributes ``batch_plan`` and ``dist_backend`` hold what was applied.
    """

    batch_plan = None
    dist_backend = None

    @classmethod
    def from_cfg(cls, cfg) -> MonoDLERunner:
        """Build the runner from ``cfg`` (``Config`` / dict, not modified)."""
        from mmengine.config import Config, ConfigDict
        cfg = copy.deepcopy(cfg)
        if not isinstance(cfg, (Config, ConfigDict)):  # RUNNERS.build passes a ConfigDict
            cfg = Config(cfg)
        guard_config(cfg)  # a config variable changed after parsing reaches nothing: an error
        changes = apply_distill_switches(cfg)
        from ...datasets.transforms.encode_monodle_targets import fill_target_coders
        coder_lines = fill_target_coders(cfg)  # the head's bbox_coder: one source
        launcher = cfg.get('launcher', 'none') or 'none'
        world_size = world_size_from_env(launcher)
        plan = None
        if cfg.get('train_dataloader', None) is not None:  # test-only configs have none
            plan = plan_batch(cfg, world_size)
            apply_batch_plan(cfg, plan)
        if cfg.get('load_from', None):  # one line naming the file (no download, no traceback)
            from ...utils.config_checks import check_load_from
            check_load_from(cfg.load_from)
        backend = prepare_distributed(cfg, launcher)
        loader_line = resolve_dataloader_settings(cfg, launcher)  # 'auto' workers / pin_memory
        from ...utils.checkpoint_loading import allow_checkpoint_globals
        allow_checkpoint_globals()  # resume / load_from under any tool: weights_only + allow-list
        with own_run_folder(cfg.work_dir, launcher):  # runs started at once: own folders
            runner = super().from_cfg(cfg)
        if runner.world_size != world_size:
            raise RuntimeError(f'the launcher reported {world_size} processes but the '
                               f'process group has {runner.world_size}')
        runner.batch_plan, runner.dist_backend = plan, backend
        for line in changes:
            runner.logger.info(f'distill switches: {line}')
        for line in coder_lines:
            runner.logger.info(line)
        if loader_line:
            runner.logger.info(loader_line)
        from ..hooks import GlobalLossLogHook
        if runner.world_size > 1 and not any(isinstance(h, GlobalLossLogHook)
                                             for h in runner.hooks):
            runner.register_hook(GlobalLossLogHook())
            runner.logger.info('GlobalLossLogHook registered: logged losses are the mean over '
                               f'{runner.world_size} ranks (the loss of the total batch).')
        guard_runner(runner)  # FiniteLossHook, ResumeCheckHook (engine/run_guards.py)
        from ..run_info import log_run_info
        log_run_info(runner, plan, backend)
        return runner

    def load_checkpoint(self, filename: str, *args, **kwargs):
        """mmengine's ``load_checkpoint`` (``--resume`` and ``load_from`` go through it), with
        a checkpoint that torch's ``weights_only`` unpickler refuses (a planted payload), or
        cannot read, reported in one line naming the file: torch's own message names no file
        and advises re-running with ``weights_only=False``, which would run the payload."""
        import pickle

        from ...utils.checkpoint_loading import refusal_message, unreadable_message
        from ...utils.cli import CheckpointError
        role = ' (--resume)' if self._resume else ' (load_from)'
        try:
            return super().load_checkpoint(filename, *args, **kwargs)
        except pickle.UnpicklingError as err:
            raise CheckpointError(refusal_message(str(filename), err, role)) from None
        except EOFError as err:
            raise CheckpointError(unreadable_message(str(filename), err, role)) from None
