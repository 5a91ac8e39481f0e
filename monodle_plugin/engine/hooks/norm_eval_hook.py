"""NormEvalHook: train the last epochs with BatchNorm in eval mode (frozen running statistics)."""
from __future__ import annotations

from typing import Optional

from mmdet3d.registry import HOOKS
from mmengine.hooks import Hook
from torch.nn.modules.batchnorm import _BatchNorm

DataBatch = Optional[dict]


@HOOKS.register_module()
class NormEvalHook(Hook):
    """From epoch ``begin_epoch`` (0-based) on, every BatchNorm layer of the model trains in
    eval mode: it normalises with its running mean / variance, as at test time, and stops
    updating them; its affine weight and bias still train.

    mmdet's backbones call this ``norm_eval`` (for the whole run, on pretrained statistics);
    here it is switched on late, for the whole model, after the statistics have been learned
    with batch statistics. Why: trained with batches of a few images, a network fits its
    weights to the statistics of each batch, while the test uses the running averages; on a
    tiny set the two differ enough to change the output. On kitti_mini (batches of 2 of 13
    frames) the last checkpoint's heatmap had a ridge of false peaks on a large near car in
    eval mode that was absent in train mode (the same weights): weights fine-tuned under the
    test-time normalisation remove that mismatch (``configs/demo/README.md``).

    The switch is re-applied before every training iteration (mmengine's loop puts the model
    back in train mode at each epoch start), so it holds across validation and ``--resume``:
    the state is a function of the epoch alone.

    Args:
        begin_epoch: first epoch (0-based) trained with frozen normalisation statistics.
    """

    priority = 'NORMAL'

    def __init__(self, begin_epoch: int) -> None:
        if isinstance(begin_epoch, bool) or not isinstance(begin_epoch, int) or begin_epoch < 0:
            raise ValueError(f'NormEvalHook: begin_epoch must be an integer >= 0, got '
                             f'{begin_epoch!r}')
        self.begin_epoch = begin_epoch

    def before_train_iter(self, runner, batch_idx: int, data_batch: DataBatch = None) -> None:
        if runner.epoch < self.begin_epoch:
            return
        for module in runner.model.modules():
            if isinstance(module, _BatchNorm) and module.training:
                module.eval()
