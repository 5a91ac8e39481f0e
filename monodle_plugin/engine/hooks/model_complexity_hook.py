"""Log the model's parameters and GMACs once, before training starts (as the seed does)."""
from __future__ import annotations

from typing import Sequence

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from ...utils.model_complexity import detector_complexity


def pipeline_input_hw(pipeline: Sequence[dict]) -> tuple[int, int] | None:
    """(H, W) of the network input from a pipeline's ``output_size=(W, H)`` step, else None."""
    for step in pipeline or []:
        size = step.get('output_size') if hasattr(step, 'get') else None
        if size is not None and len(size) == 2:
            return int(size[1]), int(size[0])
    return None


@HOOKS.register_module()
class ModelComplexityHook(Hook):
    """Logs ``params`` and ``GMACs`` (mmengine ``FlopAnalyzer``, 1 multiply-add = 1 MAC) of the
    network (backbone + neck + head, batch 1) once in ``before_train``, on the main process.

    The forward runs on a zero image in eval mode without gradient (weights, BatchNorm
    statistics and random states are untouched, so resumed runs stay bit-identical).

    Args:
        input_size: network input (W, H), pixels. None: the ``output_size`` of the training
            pipeline's resize/warp step (``MonoDLEAffineAug``); when there is none, the hook
            logs the parameter count only and says why.
    """

    priority = 'VERY_LOW'

    def __init__(self, input_size: Sequence[int] | None = None) -> None:
        if input_size is not None and len(input_size) != 2:
            raise ValueError(f'ModelComplexityHook: input_size must be (W, H), got {input_size}')
        self.input_size = tuple(int(v) for v in input_size) if input_size is not None else None

    def before_train(self, runner) -> None:
        if not is_main_process():
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if self.input_size is not None:
            hw = (self.input_size[1], self.input_size[0])
        else:
            dataset = runner.cfg.get('train_dataloader', {}).get('dataset', {})
            hw = pipeline_input_hw(dataset.get('pipeline', []))
        if hw is None:
            params = sum(p.numel() for p in model.parameters())
            runner.logger.info(f'model complexity: {params / 1e6:.2f} M parameters (GMACs not '
                               'computed: no output_size in the training pipeline; give '
                               'ModelComplexityHook input_size=(W, H))')
            return
        info = detector_complexity(model, hw)
        runner.logger.info(
            f"model complexity: {info['params'] / 1e6:.2f} M parameters, "
            f"{info['gmacs']:.3g} GMACs for a 1 x 3 x {hw[0]} x {hw[1]} input "
            '(mmengine FlopAnalyzer, 1 multiply-add = 1 MAC; backbone + neck + head)')
