"""Schedule of the depth distillation weight (lambda) over training."""
from __future__ import annotations

from typing import Optional

from mmdet3d.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch import nn

DataBatch = Optional[dict]


@HOOKS.register_module()
class DistillWeightHook(Hook):
    """Set ``loss_weight`` of the distillation loss before every training iteration.

    ``lambda(iter, epoch) = base * min(1, (iter + 1) / warmup_iters)`` (``warmup_iters = 0``:
    constant ``base``), and 0 from epoch ``off_after_epoch`` on (0-based: with
    ``off_after_epoch=100`` epochs 0..99 distil and epoch 100 onwards does not). ``base`` is
    the distillation loss's configured ``loss_weight``, read once in ``before_train``: the
    config's ``distill.lambda`` is its single source. The three
    schedules users ask for are: constant (defaults), linear warm-up over N iterations
    (``warmup_iters=N``), off after epoch E (``off_after_epoch=E``); the last two combine.
    ``iter`` is the global training iteration (it continues across resume).

    With a weight of 0 the head skips the distillation call (no extra compute, no teacher
    depth needed), logs ``loss_depth_distill`` as 0 and gives the parameters only that loss
    trains (the dense uncertainty branch of ``distill.use_uncertainty``) an exact zero
    gradient, so that DDP (``find_unused_parameters=False``) keeps running. The current
    value is written to the message hub as ``train/distill_lambda``, so the logger shows it
    as ``distill_lambda``.

    Args:
        warmup_iters: length of the linear warm-up, iterations (0: none).
        off_after_epoch: first epoch (0-based) without distillation; None: never switched off.
        loss_path: attribute path of the loss module from the (unwrapped) model.
    """

    priority = 'NORMAL'

    def __init__(self,
                 warmup_iters: int = 0,
                 off_after_epoch: Optional[int] = None,
                 loss_path: str = 'bbox_head.loss_depth_distill') -> None:
        if warmup_iters < 0:
            raise ValueError(f'warmup_iters must be >= 0, got {warmup_iters}')
        if off_after_epoch is not None and off_after_epoch < 0:
            raise ValueError(f'off_after_epoch must be >= 0 or None, got {off_after_epoch}')
        self.base_lambda: Optional[float] = None  # the loss's loss_weight, set in before_train
        self.warmup_iters = int(warmup_iters)
        self.off_after_epoch = off_after_epoch
        self.loss_path = loss_path

    def lambda_at(self, iteration: int, epoch: int, base: float) -> float:
        """Lambda for 0-based global ``iteration`` inside 0-based ``epoch``, target ``base``."""
        if self.off_after_epoch is not None and epoch >= self.off_after_epoch:
            return 0.0
        if self.warmup_iters > 0:
            return base * min(1.0, (iteration + 1) / self.warmup_iters)
        return base

    def _loss_module(self, runner) -> nn.Module:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        obj = model
        for name in self.loss_path.split('.'):
            obj = getattr(obj, name, None)
            if obj is None:
                raise AttributeError(
                    f'DistillWeightHook: the model has no {self.loss_path!r} (missing '
                    f'{name!r}); add loss_depth_distill to the head or remove the hook')
        if not hasattr(obj, 'loss_weight'):
            raise AttributeError(f'DistillWeightHook: {self.loss_path!r} has no loss_weight')
        return obj

    def before_train(self, runner) -> None:
        loss = self._loss_module(runner)
        if self.base_lambda is None:
            self.base_lambda = float(loss.loss_weight)

    def before_train_iter(self, runner, batch_idx: int, data_batch: DataBatch = None) -> None:
        value = self.lambda_at(runner.iter, runner.epoch, float(self.base_lambda or 0.0))
        self._loss_module(runner).loss_weight = value
        runner.message_hub.update_scalar('train/distill_lambda', value)

    def after_train_iter(self, runner, batch_idx: int, data_batch: DataBatch = None,
                         outputs: Optional[dict] = None) -> None:
        """Stop (or warn, ``on_missing='skip'``) when the batch had no valid teacher pixel.

        Reads the head's ``distill_valid_frac`` here, where mmengine reads the logged values
        back anyway, so the head's training path needs no host sync.
        """
        frac = (outputs or {}).get('distill_valid_frac')
        if frac is not None and float(frac) == 0.0:
            from ...models.losses.depth_distill_loss import check_teacher_validity
            check_teacher_validity(frac, (data_batch or {}).get('data_samples') or [])
