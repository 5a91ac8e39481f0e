"""MonoDLE's epoch-wise cosine warm-up of the learning rate."""
from __future__ import annotations

import math

from mmdet3d.registry import PARAM_SCHEDULERS
from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin
from mmengine.optim.scheduler.param_scheduler import _ParamScheduler


@PARAM_SCHEDULERS.register_module()
class MonoDLECosineWarmupParamScheduler(_ParamScheduler):
    """``v(t) = init + (base - init) * (1 - cos(pi * t / warmup_epochs)) / 2`` (closed form).

    MonoDLE's ``CosineWarmupLR``: epoch 0 runs at ``init_value``, epoch ``warmup_epochs``
    at the base value. mmengine's ``CosineAnnealing*`` only anneal downwards and
    ``LinearLR`` is linear, hence this class. Active on ``[begin, end)``; the default
    ``end = begin + warmup_epochs + 1`` makes it also set the base value at epoch
    ``warmup_epochs`` (afterwards a chained scheduler such as ``MultiStepLR`` takes over).
    Parameter groups whose base value is 0 (``paramwise_cfg`` ``lr_mult=0``, how a frozen
    backbone without ``frozen_stages`` is configured) stay at 0 instead of warming up from
    ``init_value``.

    Args:
        optimizer: wrapped optimizer.
        param_name: the optimizer parameter to schedule (``'lr'``).
        warmup_epochs: length of the warm-up in epochs (MonoDLE: 5).
        init_value: value at ``begin`` (MonoDLE: 1e-5).
        begin / end / last_step / by_epoch / verbose: see mmengine ``_ParamScheduler``.
    """

    def __init__(self, optimizer, param_name: str, warmup_epochs: int = 5,
                 init_value: float = 1e-5, begin: int = 0, end: int | None = None,
                 last_step: int = -1, by_epoch: bool = True, verbose: bool = False) -> None:
        if warmup_epochs <= 0:
            raise ValueError(f'MonoDLECosineWarmup: warmup_epochs must be > 0, got {warmup_epochs}')
        self.warmup_epochs = warmup_epochs
        self.init_value = init_value
        end = begin + warmup_epochs + 1 if end is None else end
        super().__init__(optimizer, param_name, begin=begin, end=end, last_step=last_step,
                         by_epoch=by_epoch, verbose=verbose)

    def _get_value(self) -> list[float]:
        t = min(self.last_step, self.warmup_epochs)
        factor = (1 - math.cos(math.pi * t / self.warmup_epochs)) / 2
        # a group whose base value is 0 (paramwise_cfg lr_mult=0: a frozen part) stays at 0
        return [0.0 if base == 0 else self.init_value + (base - self.init_value) * factor
                for base in self.base_values]


@PARAM_SCHEDULERS.register_module()
class MonoDLECosineWarmupLR(LRSchedulerMixin, MonoDLECosineWarmupParamScheduler):
    """Learning-rate version of :class:`MonoDLECosineWarmupParamScheduler`."""
