"""UncertaintyDepthDistillLoss under real torch.distributed (2 gloo processes on CPU): DDP's
averaged gradient equals the single-process gradient on the whole batch, also when the ranks
see different numbers of valid pixels and when the global weight sum is below the clamp of 1."""
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from test_depth_distill_ddp import free_port


def make_batch(sparse=False):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 1, 6, 8, generator=g)
    log_var = torch.randn(4, 1, 6, 8, generator=g) * 0.5
    teacher = torch.rand(4, 1, 6, 8, generator=g) * 40 + 1
    valid = torch.rand(4, 1, 6, 8, generator=g) > 0.3
    valid[0] = False  # rank 0's first image has nothing valid
    valid[1, :, :3] = False  # the ranks see different numbers of valid pixels
    if sparse:  # global sum of weights 0.6 < 1: the seed's clamp(min=1) acts on the global sum
        valid[:] = False
        valid[1, 0, 0, 0] = valid[3, 0, 2, 2] = True
    heat = torch.rand(4, 3, 6, 8, generator=g)
    return x, log_var, teacher, valid, heat


def shared_params():
    """Parameters every rank holds (as DDP's replicas): scales and a per-pixel shift."""
    return (torch.tensor(1.3, requires_grad=True), torch.tensor(0.7, requires_grad=True),
            torch.linspace(-0.5, 0.5, 48).reshape(1, 1, 6, 8).requires_grad_(True))


CASES = [dict(sparse=False, foreground_weight=5.0), dict(sparse=True, foreground_weight=0.3)]


def run(case, part=slice(None)):
    from monodle_plugin.models.losses.uncertainty_depth_distill_loss import (
        UncertaintyDepthDistillLoss,
    )
    x, log_var, teacher, valid, heat = make_batch(case['sparse'])
    a, b, shift = shared_params()
    loss = UncertaintyDepthDistillLoss(loss_weight=0.5,
                                       foreground_weight=case['foreground_weight'])(
        x[part] * a + shift, log_var[part] * b, teacher[part], valid[part],
        heatmap_target=heat[part])
    loss.backward()
    return loss.item(), torch.cat([a.grad.flatten(), b.grad.flatten(), shift.grad.flatten()])


def worker(rank, world, port, results):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=world)
    out = []
    for case in CASES:
        value, grads = run(case, slice(2 * rank, 2 * rank + 2))
        dist.all_reduce(grads)  # what DDP does: sum, then divide by the world size
        out.append((value, grads / world))
    results[rank] = out
    dist.barrier()  # no rank tears gloo down while the other still talks to it
    dist.destroy_process_group()


@pytest.mark.slow
def test_two_process_gradients_equal_single_process():
    manager = mp.Manager()
    results = manager.dict()
    mp.spawn(worker, args=(2, free_port(), results), nprocs=2, join=True)
    for i, case in enumerate(CASES):
        value, single = run(case)
        assert single.abs().sum() > 0
        torch.testing.assert_close(results[0][i][1], results[1][i][1])
        torch.testing.assert_close(results[0][i][1], single, rtol=1e-5, atol=1e-7)
        # each rank logs its share; their mean is the global loss
        mean = (results[0][i][0] + results[1][i][0]) / 2
        assert mean == pytest.approx(value, rel=1e-5)
