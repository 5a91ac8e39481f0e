"""Overfit MonoDLE on a few kitti_mini frames (CPU): losses must fall, boxes approach labels.

Usage:
    python tools/analysis_tools/overfit_kitti_mini.py --iters 200 --input-size 640 192

Trains the model of ``--config`` (default: the DLA-34 recipe, no ImageNet weights) on the
frames of ``--data-root`` without augmentation, at a reduced input size, then decodes the
same frames and matches each target object (those that received targets) to the nearest
prediction of its class on the output grid. Prints the loss curve and, per object,
the centre / depth / size / rotation errors.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from ..utils.cli import UserError

REPO = Path(__file__).resolve().parents[2]  # the checkout (configs/, demo/)


def build(args):
    from mmdet3d.registry import DATASETS, MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from ..structures.classes import MONODLE_CLASSES
    cfg = Config.fromfile(str(REPO / args.config))
    init_default_scope('mmdet3d')
    pipeline = [
        dict(type='LoadKittiMonoImage'), dict(type='LoadMonoDLEAnnotations'),
        dict(type='MonoDLEAffineAug', output_size=tuple(args.input_size), random_flip=0.0,
             random_crop=0.0),
        dict(type='PackMonoDLEInputs')]
    dataset = DATASETS.build(dict(type='MonoDLEKittiDataset', data_root=args.data_root,
                                  split='train', pipeline=pipeline, test_mode=False,
                                  metainfo=dict(classes=MONODLE_CLASSES)))
    samples = [dataset.prepare_data(i) for i in range(len(dataset))][:args.frames]
    cfg.model.backbone.init_cfg = None  # an overfit check from scratch: no ImageNet weights
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model, samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default='configs/monodle/monodle_dla34_kitti.py')
    parser.add_argument('--data-root', default=str(REPO / 'demo/kitti_mini/KITTI') + '/')
    parser.add_argument('--input-size', type=int, nargs=2, default=(640, 192))
    parser.add_argument('--frames', type=int, default=13)
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--iters', type=int, default=200)
    parser.add_argument('--lr', type=float, default=1.25e-3)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if not (REPO / args.config).is_file():
        raise UserError(f'config file not found: {args.config} (give --config, relative to the '
                        'repository or absolute)')
    if not (Path(args.data_root) / 'training' / 'image_2').is_dir():
        raise UserError(f'{args.data_root}: no training/image_2 (give --data-root, a KITTI '
                        'folder such as demo/kitti_mini/KITTI/)')
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model, samples = build(args)
    head = model.bbox_head
    head.test_cfg['decode_mode'] = 'affine'  # exact inverse of the reduced-size warp
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    model.train()
    start, history = time.time(), []
    for it in range(args.iters):
        pick = rng.choice(len(samples), size=min(args.batch, len(samples)), replace=False)
        batch = model.data_preprocessor(
            {'inputs': {'img': [samples[i]['inputs']['img'] for i in pick]},
             'data_samples': [samples[i]['data_samples'] for i in pick]}, training=True)
        losses = model(**batch, mode='loss')
        total = sum(losses.values())
        opt.zero_grad()
        total.backward()
        opt.step()
        history.append({k: v.item() for k, v in losses.items()})
        if it % 25 == 0 or it == args.iters - 1:
            print(f'iter {it:4d}  total {total.item():8.3f}  ' + '  '.join(
                f'{k[5:]} {v.item():.3f}' for k, v in losses.items())
                + f'  ({time.time() - start:.0f} s)', flush=True)

    model.eval()
    errors = []
    with torch.no_grad():
        for s in samples:
            data = model.data_preprocessor({'inputs': {'img': [s['inputs']['img']]},
                                            'data_samples': [s['data_samples']]}, training=False)
            outs = model._forward(data['inputs'])
            ds = s['data_samples']
            fh, fw = outs['heatmap'].shape[-2:]
            t = head.get_targets([ds.gt_instances_3d], [ds.gt_instances], [ds.metainfo],
                                 (fh, fw))
            meta = dict(ds.metainfo)
            pred = head.predict_by_feat(outs, [meta])[0][0]  # (3D, 2D) results
            gt3d = ds.gt_instances_3d.bboxes_3d.tensor.numpy()
            for slot in np.flatnonzero(t['mask_2d'][0].numpy()):
                label = int(ds.gt_instances_3d.labels_3d[slot])
                sel = (pred.labels_3d == label).numpy()
                if not sel.any():
                    errors.append(None)
                    continue
                boxes = pred.bboxes_3d.tensor.numpy()[sel]
                g = gt3d[slot]
                dist = np.linalg.norm(boxes[:, [0, 2]] - g[[0, 2]], axis=1)
                b = boxes[dist.argmin()]
                dry = abs((b[6] - g[6] + np.pi) % (2 * np.pi) - np.pi)
                errors.append((dist.min(), abs(b[2] - g[2]), np.abs(b[3:6] - g[3:6]).max(), dry,
                               pred.scores_3d.numpy()[sel][dist.argmin()]))
    found = [e for e in errors if e is not None]
    first = {k: np.mean([h[k] for h in history[:10]]) for k in history[0]}
    last = {k: np.mean([h[k] for h in history[-10:]]) for k in history[0]}
    print('mean of first 10 -> last 10 iterations:')
    for k in first:
        print(f'  {k:20s} {first[k]:9.4f} -> {last[k]:9.4f}')
    print(f'objects with targets: {len(errors)}; with a detection of their class (score >= '
          f'{head.test_cfg["score_thr"]}): {len(found)}')
    if found:
        arr = np.array(found)
        med = np.median(arr, 0)
        print(f'median error: centre (x, z) {med[0]:.2f} m, depth {med[1]:.2f} m, '
              f'size {med[2]:.2f} m, ry {med[3]:.2f} rad, score {med[4]:.2f}')
    return 0
