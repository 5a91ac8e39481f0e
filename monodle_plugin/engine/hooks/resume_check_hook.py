"""ResumeCheckHook: ``--resume`` continues the run the checkpoint holds, or stops at once.

mmengine's ``Runner.resume`` restores the optimizer (its lr included) and the schedulers from the
checkpoint whatever the config now says, and loads the weights non-strictly. Two silent
failures follow: a resume with another total batch / lr logged and recorded the new lr while
the optimizer kept the old one (and the ETA went negative: the epoch length changed), and a
resume into another model (head width, backbone) failed at the first optimizer step with a
tensor-size error, or with "different number of parameter groups". This hook:

- writes the run's batch plan (``MonoDLERunner.batch_plan``: total batch, per-process batch,
  processes, lr) into every checkpoint's ``meta['batch_plan']``;
- on ``--resume``, before the weights are loaded (``after_load_checkpoint``), compares the
  checkpoint's model tensors (names and shapes) with the config's model and its recorded total
  batch and lr with this run's, and raises a one-line :class:`~monodle_plugin.utils.cli.
  CheckpointError` naming the checkpoint, what differs and the fix (the same settings, or
  ``load_from`` to start a new run from its weights);
- adds ``resumed_from``, ``resumed_epoch``, ``resumed_iter`` to the run's ``run_info.json``.

``load_from`` (fine-tuning: a new run from the weights) is not checked here.
``MonoDLERunner`` registers it under any tool (``engine/run_guards.py``).
"""
from __future__ import annotations

import json
import math
import os.path as osp

from mmdet3d.registry import HOOKS
from mmengine.dist import is_main_process
from mmengine.hooks import Hook

from ...utils.cli import CheckpointError

#: key of the batch plan in a checkpoint's ``meta``
PLAN_KEY = 'batch_plan'


def plan_record(plan) -> dict | None:
    """The parts of a :class:`~monodle_plugin.engine.batch_lr_scaling.BatchPlan` a resume
    must keep (None without a plan)."""
    if plan is None:
        return None
    return dict(total=plan.total, per_process=plan.per_gpu, world_size=plan.world_size,
                lr=plan.lr)


def _lr(value) -> str:
    return 'n/a' if value is None else f'{value:.6g}'


def _resume_path(runner) -> str:
    if runner._load_from:
        return str(runner._load_from)
    from mmengine.runner import find_latest_checkpoint
    return str(find_latest_checkpoint(runner.work_dir))


@HOOKS.register_module()
class ResumeCheckHook(Hook):
    """Refuse a ``--resume`` into another model or another batch / lr plan (see module)."""

    priority = 'VERY_HIGH'  # before ResumableCheckpointHook restores anything

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        record = plan_record(getattr(runner, 'batch_plan', None))
        if record is not None:
            checkpoint.setdefault('meta', {})[PLAN_KEY] = record

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not runner._resume:
            return
        path = _resume_path(runner)
        self._check_model(runner, checkpoint, path)
        self._check_plan(runner, checkpoint, path)
        meta = checkpoint.get('meta', {}) or {}
        self._record(runner, path, meta.get('epoch'), meta.get('iter'))

    @staticmethod
    def _check_model(runner, checkpoint: dict, path: str) -> None:
        from mmengine.model import is_model_wrapper

        from ...utils.checkpoint_loading import compare_state_dicts, describe_mismatch
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        state = checkpoint.get('state_dict', checkpoint)
        state = {k[len('module.'):] if k.startswith('module.') else k: v
                 for k, v in state.items() if hasattr(v, 'shape')}
        missing, unexpected, shapes = compare_state_dicts(model.state_dict(), state)
        if missing or unexpected or shapes:
            config = getattr(runner.cfg, 'filename', None) or 'the config'
            raise CheckpointError(
                f'--resume {path}: the checkpoint holds another model than {config} '
                f'({describe_mismatch(missing, unexpected, shapes)}); resume with the config '
                'and --cfg-options it was trained with, or start a new run from its weights '
                f'(--cfg-options load_from={path}, without --resume)')

    @staticmethod
    def _check_plan(runner, checkpoint: dict, path: str) -> None:
        old = (checkpoint.get('meta', {}) or {}).get(PLAN_KEY)
        new = plan_record(getattr(runner, 'batch_plan', None))
        if old is None or new is None:
            return
        same_lr = (old['lr'] is None or new['lr'] is None
                   or math.isclose(old['lr'], new['lr'], rel_tol=1e-9))
        if old['total'] == new['total'] and same_lr:
            return
        raise CheckpointError(
            f'--resume {path}: the checkpoint was trained at total batch {old["total"]} '
            f'({old["world_size"]} x {old["per_process"]}), lr {_lr(old["lr"])}; this run would '
            f'use total batch {new["total"]} ({new["world_size"]} x {new["per_process"]}), lr '
            f'{_lr(new["lr"])}, but the optimizer and the lr schedule go on with the '
            'checkpoint\'s lr and the epoch length would change; resume with the same total '
            f'batch and lr (--cfg-options total_batch_size={old["total"]}, the config\'s lr), '
            f'or start a new run from its weights (--cfg-options load_from={path}, without '
            '--resume)')

    @staticmethod
    def _record(runner, path: str, epoch, iteration) -> None:
        """``resumed_from`` / ``resumed_epoch`` / ``resumed_iter`` into run_info.json."""
        info_path = osp.join(runner.log_dir, 'run_info.json')
        if not is_main_process() or not osp.isfile(info_path):
            return
        with open(info_path) as f:
            info = json.load(f)
        info.update(resumed_from=path, resumed_epoch=epoch, resumed_iter=iteration)
        with open(info_path, 'w') as f:
            json.dump(info, f, indent=2)
        runner.logger.info(f'Resuming from {path} (epoch {epoch}, iteration {iteration}): '
                           'same model, total batch and lr as the checkpoint')


__all__ = ['PLAN_KEY', 'ResumeCheckHook', 'plan_record']
