"""DepthDistillLoss under real torch.distributed (2 gloo processes on CPU): DDP's averaged
gradient equals the single-process gradient on the whole batch, for both loss types."""
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def make_batch():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 1, 6, 8, generator=g)
    teacher = torch.rand(4, 1, 6, 8, generator=g) * 40 + 1
    valid = torch.rand(4, 1, 6, 8, generator=g) > 0.3
    valid[0] = False  # rank 0's first image has nothing valid
    valid[1, :, :3] = False  # the ranks see different numbers of valid pixels
    heat = torch.rand(4, 3, 6, 8, generator=g)
    return x, teacher, valid, heat


def shared_params():
    """Parameters every rank holds (as DDP's replicas): a scale and a per-pixel shift."""
    return (torch.tensor(1.3, requires_grad=True),
            torch.linspace(-0.5, 0.5, 48).reshape(1, 1, 6, 8).requires_grad_(True))


CASES = [dict(loss_type='l1'), dict(loss_type='silog'),
         dict(loss_type='silog', silog_weighted=True, variance_factor=0.85)]


def worker(rank, world, port, results):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=world)
    from monodle_plugin.models.losses.depth_distill_loss import DepthDistillLoss
    x, teacher, valid, heat = make_batch()
    part = slice(2 * rank, 2 * rank + 2)
    out = []
    for case in CASES:
        scale, shift = shared_params()
        loss = DepthDistillLoss(loss_weight=0.5, **case)(x[part] * scale + shift,
                                                         teacher[part], valid[part],
                                                         heatmap_target=heat[part])
        loss.backward()
        grads = torch.cat([scale.grad.flatten(), shift.grad.flatten()])
        dist.all_reduce(grads)  # what DDP does: sum, then divide by the world size
        out.append((loss.item(), grads / world))
    results[rank] = out
    dist.barrier()  # no rank tears gloo down while the other still talks to it
    dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_gradients_equal_single_process():
    from monodle_plugin.models.losses.depth_distill_loss import DepthDistillLoss
    manager = mp.Manager()
    results = manager.dict()
    mp.spawn(worker, args=(2, free_port(), results), nprocs=2, join=True)
    x, teacher, valid, heat = make_batch()
    for i, case in enumerate(CASES):
        scale, shift = shared_params()
        loss = DepthDistillLoss(loss_weight=0.5, **case)(x * scale + shift, teacher, valid,
                                                         heatmap_target=heat)
        loss.backward()
        single = torch.cat([scale.grad.flatten(), shift.grad.flatten()])
        assert single.abs().sum() > 0
        # both ranks hold the averaged gradient; it equals the single-process gradient
        torch.testing.assert_close(results[0][i][1], results[1][i][1])
        torch.testing.assert_close(results[0][i][1], single, rtol=1e-5, atol=1e-7)
        if case['loss_type'] == 'silog':  # silog: every rank reports the global value
            assert results[0][i][0] == pytest.approx(loss.item(), rel=1e-5)
            assert results[1][i][0] == pytest.approx(loss.item(), rel=1e-5)
        else:  # l1: the ranks' values average to the global value
            mean = (results[0][i][0] + results[1][i][0]) / 2
            assert mean == pytest.approx(loss.item(), rel=1e-5)
