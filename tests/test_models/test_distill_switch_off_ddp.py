"""Distillation switched off mid-run under real DDP (issue 27, item 1).

``DistillWeightHook`` sets the distillation weight to 0 from ``distill.off_after_epoch``; the
head then skips the distillation loss. With ``distill.use_uncertainty=True`` the dense
uncertainty branch is trained by that loss only: without a gradient for it,
``DistributedDataParallel(find_unused_parameters=False)`` stops on the next iteration
("Expected to have finished reduction in the prior iteration"). Here: the real head inside
torch's DDP, 2 gloo processes on CPU, lambda 0.5 -> 0 -> 0 over 3 iterations.
"""
import os
import socket

import pytest
import torch
from test_centernet3d_head import FH, FW, make_head, two_samples

LAMBDAS = (0.5, 0.0, 0.0)
BRANCH = 'dense_depth_uncertainty'


class HeadOnFeatures(torch.nn.Module):
    """The head with uncertainty distillation; forward = its loss on given features."""

    def __init__(self):
        super().__init__()
        self.head = make_head(use_distill_uncertainty=True, loss_depth_distill=dict(
            type='UncertaintyDepthDistillLoss', loss_weight=LAMBDAS[0]))

    def forward(self, feats, samples):
        losses = self.head.loss(feats, samples)
        return sum(v for k, v in losses.items() if k.startswith('loss_')), losses


def samples_with_teacher():
    from mmengine.structures import PixelData
    gen = torch.Generator().manual_seed(2)
    samples = two_samples()
    for s in samples:
        s.gt_depth = PixelData(depth=torch.rand(1, FH, FW, generator=gen) * 50 + 1,
                               valid=torch.rand(1, FH, FW, generator=gen) > 0.3)
    return samples


def _worker(rank, world, port, queue):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = HeadOnFeatures()
    ddp = DistributedDataParallel(model, find_unused_parameters=False)
    feats = torch.randn(world, 8, FH, FW, generator=torch.Generator().manual_seed(1))
    samples = samples_with_teacher()[rank:rank + 1]
    report = []
    try:
        for lam in LAMBDAS:  # what DistillWeightHook.before_train_iter does
            model.head.loss_depth_distill.loss_weight = lam
            total, losses = ddp(feats[rank:rank + 1], samples)
            total.backward()
            branch = [p.grad for n, p in model.head.named_parameters() if n.startswith(BRANCH)]
            report.append(dict(
                losses={k: v.item() for k, v in losses.items()},
                branch_grads=None if any(g is None for g in branch) else
                float(sum(g.abs().sum() for g in branch)),
                depth_grad=float(model.head.depth[2].weight.grad.abs().sum())))
            model.zero_grad(set_to_none=True)
    except RuntimeError as e:  # DDP's "Expected to have finished reduction ..."
        report.append(str(e).splitlines()[0])
    queue.put((rank, report))
    dist.barrier()  # no rank tears gloo down while the other still talks to it
    dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_keeps_running_when_distillation_is_switched_off():
    import torch.multiprocessing as mp
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    ctx = mp.get_context('spawn')
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(r, 2, port, queue)) for r in range(2)]
    for p in procs:
        p.start()
    try:
        reports = dict(queue.get(timeout=180) for _ in procs)
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.terminate()
    for rank, report in reports.items():
        errors = [r for r in report if isinstance(r, str)]
        assert not errors, f'rank {rank}, iteration {len(report)}: {errors[0]}'
        assert len(report) == len(LAMBDAS)
        on, *off = report
        assert on['losses']['loss_depth_distill'] > 0 and on['branch_grads'] > 0
        for it in off:  # switched off: logged as 0, the branch's gradient exactly 0
            assert it['losses']['loss_depth_distill'] == 0
            assert it['branch_grads'] == 0.0
            assert it['depth_grad'] > 0  # the rest of the head still learns
    # both ranks log the same global normalisers: their losses agree in what is global
    assert [r['losses'].keys() for r in reports[0]] == [r['losses'].keys() for r in reports[1]]
