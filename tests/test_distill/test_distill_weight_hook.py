"""DistillWeightHook schedules: constant, linear warm-up, off after an epoch; logged lambda."""
import pytest
import torch
from mmengine.model import BaseModel
from torch import nn

import monodle_plugin  # noqa: F401  (registers)
from monodle_plugin.engine.hooks import DistillWeightHook
from monodle_plugin.models.losses import DepthDistillLoss


def test_constant():
    hook = DistillWeightHook()
    assert [hook.lambda_at(i, e, 0.5) for i, e in ((0, 0), (100, 3), (10**6, 139))] == [0.5] * 3


def test_linear_warmup():
    hook = DistillWeightHook(warmup_iters=4)
    assert [hook.lambda_at(i, 0, 0.5) for i in range(6)] == pytest.approx(
        [0.125, 0.25, 0.375, 0.5, 0.5, 0.5])


def test_off_after_epoch_and_combined():
    hook = DistillWeightHook(off_after_epoch=2)
    assert [hook.lambda_at(10 * e, e, 0.5) for e in range(4)] == [0.5, 0.5, 0.0, 0.0]
    hook = DistillWeightHook(warmup_iters=10, off_after_epoch=1)
    assert hook.lambda_at(4, 0, 1.0) == pytest.approx(0.5) and hook.lambda_at(12, 1, 1.0) == 0.0


def test_bad_arguments():
    with pytest.raises(ValueError):
        DistillWeightHook(warmup_iters=-1)
    with pytest.raises(ValueError):
        DistillWeightHook(off_after_epoch=-2)
    # the target lambda has one source, the loss's loss_weight (distill.lambda): no second
    # setting on the hook that the distillation switches would not keep in step
    with pytest.raises(TypeError, match='base_lambda'):
        DistillWeightHook(base_lambda=0.5)


class ToyHead(nn.Module):
    def __init__(self, loss_weight):
        super().__init__()
        self.loss_depth_distill = DepthDistillLoss(loss_weight=loss_weight)


class ToyModel(BaseModel):
    """Records the distillation weight the loss has at every training step."""

    def __init__(self, loss_weight=0.5):
        super().__init__()
        self.bbox_head = ToyHead(loss_weight)
        self.param = nn.Parameter(torch.zeros(1))
        self.seen = []

    def forward(self, inputs, data_samples=None, mode='tensor'):
        self.seen.append(self.bbox_head.loss_depth_distill.loss_weight)
        return dict(loss=(self.param * inputs.float().mean()).sum())


def test_inside_a_runner_sets_the_loss_weight_and_logs(tmp_path):
    from mmengine.runner import Runner
    model = ToyModel(loss_weight=0.5)
    runner = Runner(
        model=model,
        work_dir=str(tmp_path),
        train_dataloader=dict(dataset=[dict(inputs=torch.ones(1))] * 3, batch_size=1,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.0)),
        train_cfg=dict(by_epoch=True, max_epochs=3),
        custom_hooks=[dict(type='DistillWeightHook', warmup_iters=4, off_after_epoch=2)],
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1), checkpoint=None),
        default_scope='mmdet3d', log_level='WARNING')
    runner.train()
    # base lambda read from the loss (0.5); 3 iterations per epoch; off from epoch 2
    assert model.seen == pytest.approx([0.125, 0.25, 0.375, 0.5, 0.5, 0.5, 0.0, 0.0, 0.0])
    history = runner.message_hub.get_scalar('train/distill_lambda')
    assert list(history.data[0]) == pytest.approx(model.seen)


def test_missing_loss_is_a_clear_error():
    class Runner:
        model = nn.Linear(1, 1)

    with pytest.raises(AttributeError, match='loss_depth_distill'):
        DistillWeightHook().before_train(Runner())
