"""DP <-> DDP equivalence of MonoDLE's batch size and learning rate: the rules
(:func:`equivalent_settings`, :func:`gpu_table`, the report and the derivation) and the
gradient simulation (:func:`simulate`: one process on the whole batch vs two gloo processes
through ``DistributedDataParallel``, the real ``CenterNet3DHead`` losses, float64).

The command, its options and examples: ``tools/dp_ddp_equivalence.py`` ->
:mod:`monodle_plugin.commands.dp_ddp_equivalence`.
"""
from __future__ import annotations

import os.path as osp
import tempfile
from typing import Optional, Sequence

#: gradients that differ by more than this (absolute, float64 run) fail --simulate
GRAD_TOLERANCE = 1e-6


# ---------------------------------------------------------------------------- calculator
#: DDP GPU counts of the seed's table (``-s`` in the seed; always printed here)
TABLE_GPUS = (1, 2, 4, 8)


def equivalent_settings(dp_batch: int, dp_lr: float, dp_gpus: int,
                        ddp_gpus: Optional[int] = None,
                        ddp_batch: Optional[int] = None) -> dict:
    """DDP per-GPU batch and lr that reproduce a DP run (the seed's ``compute_equivalence``).

    Args:
        dp_batch: DP total batch (the ``batch_size`` of a DataParallel run: all GPUs together).
        dp_lr: DP learning rate.
        dp_gpus: GPUs of the DP run.
        ddp_gpus: DDP processes (one per GPU); None -> ``dp_gpus`` (the seed's default).
        ddp_batch: per-GPU DDP batch (the seed's ``--ddp-per-gpu-batch``); None ->
            ``max(1, dp_batch // ddp_gpus)``.

    Returns:
        dict with ``ddp_gpus``, ``per_gpu``, ``total``, ``lr`` (full float precision),
        ``ratio`` (DDP total / DP total), ``same_total``, ``remainder`` (samples of the DP batch
        that do not divide over the GPUs, when the per-GPU batch was derived), ``batch_grows``
        (more GPUs than DP samples: one sample per GPU), ``dp_per_replica``.

    Raises:
        ValueError: a count below 1 or an lr not above 0, naming the flag.
    """
    if ddp_gpus is None:
        ddp_gpus = dp_gpus
    for name, value in (('--dp-batch', dp_batch), ('--dp-gpus', dp_gpus),
                        ('--ddp-gpus', ddp_gpus)):
        if value < 1:
            raise ValueError(f'{name} must be >= 1, got {value}')
    if not dp_lr > 0:
        raise ValueError(f'--dp-lr must be > 0, got {dp_lr}')
    if ddp_batch is not None and ddp_batch < 1:
        raise ValueError(f'--ddp-per-gpu-batch must be >= 1, got {ddp_batch}')
    derived = ddp_batch is None
    per_gpu = max(1, dp_batch // ddp_gpus) if derived else ddp_batch
    total = per_gpu * ddp_gpus
    ratio = total / dp_batch
    return dict(ddp_gpus=ddp_gpus, per_gpu=per_gpu, total=total,
                lr=dp_lr * (total / dp_batch),  # the seed's expression, bit for bit
                ratio=ratio, same_total=total == dp_batch,
                remainder=dp_batch - total if derived and total < dp_batch else 0,
                batch_grows=derived and dp_batch < ddp_gpus,
                dp_per_replica=dp_batch / dp_gpus)


def gpu_table(dp_batch: int, dp_lr: float, dp_gpus: int,
              gpus: Sequence[int] = TABLE_GPUS) -> list:
    """The seed's table: equivalent settings for 1/2/4/8 DDP GPUs (counts above the DP batch
    are left out, as in the seed). Returns a list of :func:`equivalent_settings` dicts."""
    return [equivalent_settings(dp_batch, dp_lr, dp_gpus, n) for n in gpus if n <= dp_batch]


def format_lr(lr: float) -> str:
    """Full precision: the shortest decimal that reads back as the same float (``repr``)."""
    return repr(float(lr))


def format_table(rows: list) -> str:
    """Text table of :func:`gpu_table` rows (the seed's columns; exact = same total batch)."""
    lines = ['DDP GPUs | per-GPU batch | total batch | lr                     | exact',
             '---------+---------------+-------------+------------------------+------']
    for r in rows:
        lines.append(f'{r["ddp_gpus"]:>8} | {r["per_gpu"]:>13} | {r["total"]:>11} | '
                     f'{format_lr(r["lr"]):<22} | {"yes" if r["same_total"] else "~ (lr scaled)"}')
    return '\n'.join(lines)


#: where this tool's advice differs from the seed's, one line each (printed by the report)
DIFFERENCES = (
    'object-count normalised losses: the seed calls DDP "< 0.1 % off" (local counts); here '
    'every loss divides by the global count, so DDP is exact (see --verbose / --simulate)',
    '--simulate: the seed compares random numpy gradients; here the real head and losses run '
    'in 2 gloo processes against 1 process',
    'the command: the seed prints a YAML snippet for train_val_ddp.py; here the configs carry '
    'the batch and lr, so the command is tools/dist_train.sh',
)


def format_report(args, res: dict) -> str:
    """The equivalence report: DP reference, DDP settings, the seed's table, the command."""
    lr = format_lr(res['lr'])
    lines = [
        f'DP reference : total batch {args.dp_batch} on {args.dp_gpus} GPU(s) '
        f'({res["dp_per_replica"]:g} per replica), lr {format_lr(args.dp_lr)}',
        f'DDP          : {res["ddp_gpus"]} process(es) x {res["per_gpu"]} per GPU = total '
        f'{res["total"]}, lr {lr}'
        + (' (same total batch -> same lr)' if res['same_total'] else
           f' (linear scaling x{res["ratio"]!r} = {res["total"]}/{args.dp_batch})'),
        f'  Per-GPU batch size : {res["per_gpu"]}',
        f'  Total batch size   : {res["total"]}',
        f'  Learning rate      : {lr}',
    ]
    if res['batch_grows']:
        lines.append(f'  note: {res["ddp_gpus"]} GPUs for a batch of {args.dp_batch}: 1 sample '
                     f'per GPU (the seed\'s advice), the total batch grows to {res["total"]} '
                     'and the lr is scaled linearly.')
    elif res['remainder']:
        lines.append(f'  note: {args.dp_batch} does not divide over {res["ddp_gpus"]} GPUs; '
                     f'{res["remainder"]} sample(s) per step are dropped from the total and '
                     'the lr is scaled linearly. Pick a GPU count that divides it for an exact '
                     'equivalent.')
    lines += ['', f'Equivalent settings by GPU count (DP batch {args.dp_batch}, '
              f'lr {format_lr(args.dp_lr)}):',
              format_table(gpu_table(args.dp_batch, args.dp_lr, args.dp_gpus)), '',
              'Where this tool differs from the seed\'s:']
    lines += [f'  - {d}' for d in DIFFERENCES]
    lines += [
        '',
        'With monodle_plugin the configs carry total_batch_size and the lr tuned for it;',
        'their MonoDLERunner computes the per-GPU batch (total // GPUs) and scales the lr:',
    ]
    if res['same_total'] or args.ddp_batch is None:
        lines.append(f'  tools/dist_train.sh CONFIG {res["ddp_gpus"]}'
                     + ('' if args.dp_batch == 16 else
                        f' --cfg-options total_batch_size={args.dp_batch}'))
    else:
        lines.append(f'  tools/dist_train.sh CONFIG {res["ddp_gpus"]} '
                     f'--cfg-options train_dataloader.batch_size={res["per_gpu"]}'
                     f'   # lr scaled to {lr}')
    lines.append('  (the effective total batch and lr are printed in the log at start-up)')
    return '\n'.join(lines)


DERIVATION = r"""
Derivation
----------
DP (nn.DataParallel, one process): the loss is computed on the gathered batch of B samples,
    g_DP = grad L(batch),  with MonoDLE's losses  L = sum_i l_i / n
where n is a count over the *whole* batch: positives of the heatmap (focal loss), objects
with 2D / 3D targets (offset, size, depth, heading), distillation weights (sum of w).

DDP, N processes, b = B / N samples each; DDP averages the per-process gradients:
    g_DDP = (1/N) sum_k grad L_k.
(1) Per-sample mean losses (l_i / b):  g_DDP = (1/N) sum_k (1/b) sum_{i in k} grad l_i
    = (1/B) sum_i grad l_i = g_DP.  Exact.
(2) Count-normalised losses with LOCAL counts n_k (what naive DDP code does):
    g_DDP = (1/N) sum_k (sum_{i in k} grad l_i) / n_k  !=  (sum_i grad l_i) / n
    unless every n_k = n / N. KITTI images hold 0 to 20+ objects, so this is biased towards
    the objects of sparsely populated ranks (the reference README's "< 0.1 %" hope).
(3) This package: every count-normalised loss divides its per-rank sum by
    global_normalizer(n_k) = (sum_k n_k) / N = n / N    (one all_reduce of the count):
    g_DDP = (1/N) sum_k (sum_{i in k} grad l_i) * N / n = (sum_i grad l_i) / n = g_DP.  Exact.
    Non-linear batch statistics are built from global sums too: the dimension-aware L1
    compensation weight, and the SILog distillation loss (E[g^2], E[g] over all ranks).
    With no positive anywhere the focal loss returns the (global) negative sum, as MonoDLE.
(4) Same total batch => same lr. Different total => linear scaling lr * (b N) / B (mmengine
    auto_scale_lr, enabled in every config; MonoDLERunner sets the per-process batch).

What is exact and what is not
-----------------------------
exact      : the loss normalisation above (up to float rounding: all-reduce sums in another
             order, ~1e-7 relative in float32; mmdet's L1Loss adds eps = 1.2e-7 to its
             avg_factor, a relative deviation <= (N-1) * 1.2e-7 / n).
exact      : the samples of a step. mmengine's DefaultSampler shuffles with the same seed on
             every rank and gives rank k the indices k, k+N, ...; the union of the N per-rank
             batches of step t is the single-process batch t.
NOT exact  : BatchNorm in train mode. BN normalises with the statistics of the samples one
             process (or one DP replica) sees: DDP b = B/N per GPU, DP B/G per replica, one
             GPU B. Neither DP nor DDP reproduce single-GPU BN; use --sync_bn torch (statistics
             over all ranks, = one process on B) or frozen / eval-mode BN for bit-level
             equivalence. mmengine's DDP has broadcast_buffers=False: running statistics
             drift apart per rank and the checkpoint stores rank 0's.
NOT exact  : random augmentation draws (flip / crop): each rank has its own generator
             stream, so the same distribution but not the same draws as one process.
--simulate therefore puts BN in eval mode and feeds fixed tensors: what it compares is the
loss normalisation, which is what DDP changes.
"""


# ---------------------------------------------------------------------------- simulation
SCENARIOS = (
    # (name, objects per image, rank split; distillation loss type)
    ('ranks with 1 vs 7 objects, L1 distillation', (1, 0, 3, 4), 'l1'),
    ('rank 0 without any object, SILog distillation', (0, 0, 2, 5), 'silog'),
)
IMG_HW = (64, 160)  # network input (H, W) pixels; features at stride 4


def build_sim_model(distill_type: str):
    """Small conv backbone (eval-mode BN) + the real CenterNet3DHead with every loss."""
    from mmdet3d.registry import MODELS
    from torch import nn

    from monodle_plugin.structures.classes import MONODLE_CLASSES

    head = MODELS.build(dict(
        type='CenterNet3DHead', in_channels=8, feat_channels=8,
        bbox_coder=dict(type='MonoDLEBBoxCoder', writelist=MONODLE_CLASSES),
        loss_depth_distill=dict(type='DepthDistillLoss', loss_type=distill_type,
                                loss_weight=0.5)))

    class SimModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1),
                                          nn.BatchNorm2d(8), nn.ReLU(),
                                          nn.Conv2d(8, 8, 3, stride=2, padding=1))
            self.head = head

        def forward(self, img, data_samples):
            losses = self.head.loss(self.backbone(img), data_samples)
            return sum(v for k, v in losses.items() if k.startswith('loss'))

    model = SimModel()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    model = model.double()
    model.train()
    model.backbone[1].eval()  # BN statistics per process are not what this compares
    return model


def make_batch(objects_per_image, seed: int):
    """Images (B, 3, H, W) float64 and Det3DDataSamples with random, valid KITTI-like objects."""
    import numpy as np
    import torch
    from mmdet3d.structures import CameraInstance3DBoxes, Det3DDataSample
    from mmengine.structures import InstanceData, PixelData

    rng = np.random.RandomState(seed)
    h, w = IMG_HW
    fx = 120.0
    imgs = torch.from_numpy(rng.randn(len(objects_per_image), 3, h, w))
    samples = []
    for i, n in enumerate(objects_per_image):
        z = rng.uniform(5, 40, n)
        x = rng.uniform(-6, 6, n)
        dims = rng.uniform([0.5, 1.4, 0.5], [4.0, 1.9, 1.8], (n, 3))  # l, h, w
        y = rng.uniform(1.0, 1.8, n)
        ry = rng.uniform(-np.pi, np.pi, n)
        u = fx * x / z + w / 2
        v = fx * (y - dims[:, 1] / 2) / z + h / 2
        half_w, half_h = fx * dims[:, 0] / z / 2 + 2, fx * dims[:, 1] / z / 2 + 2
        bboxes = np.stack([u - half_w, v - half_h, u + half_w, v + half_h], 1)
        labels = rng.randint(0, 3, n)
        gt3d = InstanceData()
        gt3d.bboxes_3d = CameraInstance3DBoxes(
            torch.from_numpy(np.concatenate([np.stack([x, y, z], 1), dims, ry[:, None]], 1)))
        gt3d.labels_3d = torch.from_numpy(labels)
        gt3d.centers_2d = torch.from_numpy(np.stack([u, v], 1))
        gt3d.depths = torch.from_numpy(z)
        gt3d.alphas = torch.from_numpy(ry - np.arctan2(x, z))
        gt3d.difficulty = torch.ones(n, dtype=torch.long)
        gt2d = InstanceData(bboxes=torch.from_numpy(bboxes), labels=torch.from_numpy(labels))
        teacher = torch.from_numpy(rng.uniform(3, 60, (1, h // 4, w // 4)))
        valid = torch.from_numpy(rng.rand(1, h // 4, w // 4) > 0.3)
        sample = Det3DDataSample(metainfo=dict(img_shape=(h, w), crop_scale=1.0,
                                               random_crop=bool(i % 2), img_path=f'sim_{i}'))
        sample.gt_instances_3d = gt3d
        sample.gt_instances = gt2d
        sample.gt_depth = PixelData(depth=teacher * valid, valid=valid)
        samples.append(sample)
    return imgs, samples


def _grads(model) -> dict:
    return {n: p.grad.detach().clone() if p.grad is not None else None
            for n, p in model.named_parameters()}


def run_step(objects, distill_type: str, seed: int, rank: int = 0, world: int = 1,
             local_counts: bool = False) -> dict:
    """One forward/backward on this rank's share of the batch; returns the (averaged) grads."""
    import contextlib

    import torch
    from torch.nn.parallel import DistributedDataParallel as DDP

    from monodle_plugin.models.utils.dist_utils import local_count_normalization

    torch.manual_seed(seed)
    model = build_sim_model(distill_type)
    imgs, samples = make_batch(objects, seed)
    per = len(objects) // world
    share = slice(rank * per, (rank + 1) * per)
    net = DDP(model, device_ids=None) if world > 1 else model
    ctx = local_count_normalization() if local_counts else contextlib.nullcontext()
    with ctx:
        loss = net(imgs[share], samples[share])
    loss.backward()
    return _grads(model)


def _worker(rank: int, world: int, out_dir: str, seed: int) -> None:
    import torch
    import torch.distributed as dist
    torch.set_num_threads(1)
    # a file store in the private temp dir: no TCP port to collide with other jobs
    dist.init_process_group('gloo', init_method=f'file://{out_dir}/store', rank=rank,
                            world_size=world)
    try:
        for idx, (_, objects, distill) in enumerate(SCENARIOS):
            for local in (False, True):
                grads = run_step(objects, distill, seed, rank, world, local_counts=local)
                if rank == 0:
                    torch.save(grads, osp.join(out_dir, f'ddp_{idx}_{int(local)}.pt'))
        dist.barrier()  # no rank tears gloo down while the other still talks to it
    finally:
        dist.destroy_process_group()


def compare(ref: dict, other: dict) -> tuple:
    """(max absolute difference, max relative difference) over all parameter gradients."""
    max_abs, max_rel = 0.0, 0.0
    for name, g in ref.items():
        o = other[name]
        if g is None or o is None:
            if (g is None) != (o is None):
                raise AssertionError(f'gradient of {name} missing on one side')
            continue
        diff = (g - o).abs().max().item()
        max_abs = max(max_abs, diff)
        max_rel = max(max_rel, diff / max(g.abs().max().item(), 1e-12))
    return max_abs, max_rel


def simulate(world: int = 2, seed: int = 0, verbose: bool = True) -> list:
    """Run the scenarios on 1 process and on ``world`` gloo processes; returns result dicts."""
    import torch
    import torch.multiprocessing as mp
    torch.set_num_threads(1)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_worker, args=(world, tmp, seed), nprocs=world, join=True)
        for idx, (name, objects, distill) in enumerate(SCENARIOS):
            ref = run_step(objects, distill, seed)
            exact = compare(ref, torch.load(osp.join(tmp, f'ddp_{idx}_0.pt')))
            naive = compare(ref, torch.load(osp.join(tmp, f'ddp_{idx}_1.pt')))
            per = len(objects) // world
            split = [sum(objects[r * per:(r + 1) * per]) for r in range(world)]
            res = dict(scenario=name, objects_per_rank=split, max_abs_diff=exact[0],
                       max_rel_diff=exact[1], local_count_max_abs_diff=naive[0],
                       local_count_max_rel_diff=naive[1], equal=exact[0] <= GRAD_TOLERANCE)
            results.append(res)
            if verbose:
                print(f'* {name}: objects per rank {split}, total batch {len(objects)}')
                print(f'    global counts (this package): max |dgrad| = {exact[0]:.2e} '
                      f'(relative {exact[1]:.2e}) -> '
                      f'{"EQUAL" if res["equal"] else "DIFFERENT"} (tolerance '
                      f'{GRAD_TOLERANCE:g})')
                print(f'    local counts (naive DDP)    : max |dgrad| = {naive[0]:.2e} '
                      f'(relative {naive[1]:.2e})')
    return results


# ---------------------------------------------------------------------------- CLI
