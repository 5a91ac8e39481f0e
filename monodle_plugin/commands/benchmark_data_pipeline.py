"""Images/s of the training data pipeline against the official MonoDLE dataset, in one run.

Ours, per frame: ``MonoDLEKittiDataset.__getitem__`` with the training pipeline of
``configs/_base_/datasets/kitti_mono3d_monodle.py`` (load image + labels, MonoDLE's random
flip / crop / affine warp, pack; its ``EncodeMonoDLETargets`` step left out), then
``CenterNet3DHead.get_targets`` of the one sample (the same encoding that step runs)
(heatmap, offsets, sizes, depth, heading: what the official ``__getitem__`` also builds) when the
head is available. Official: ``KITTI_Dataset('train', cfg).__getitem__`` with its example config
(``writelist ['Car']``, flip 0.5, crop 0.5, scale 0.4, shift 0.1), which also normalises the
image with the ImageNet mean/std in float32; ours leaves that to the model's data preprocessor
(batched, on the GPU in training). ``--normalize`` adds that step to ours too, on the CPU, for a
like-for-like count.

Both run single-process with ``torch.set_num_threads(1)`` over the same frames with the same
numpy seed per frame (so both draw the same augmentations), rounds interleaved so that background
load hits both; images/s = frames / median round time.

The official code is imported from ``--official-root``, a folder the user fetched (e.g.
``git clone https://github.com/xinzhuma/monodle /tmp/ref/monodle``); it is never part of this
repository. It expects ``<root_dir>/object/training/...``: a temporary folder of symlinks to
``--data-root`` is built for it.

Usage::

    python tools/analysis_tools/benchmark_data_pipeline.py --official-root /tmp/ref/monodle \\
        --data-root demo/kitti_mini/KITTI --rounds 5
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import statistics
import sys
import tempfile
import time
import types

import numpy as np
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))  # the checkout
DATA_CONFIG = osp.join(REPO, 'configs', '_base_', 'datasets', 'kitti_mono3d_monodle.py')
# the official example config (experiments/example/kitti_example.yaml), dataset part
OFFICIAL_CFG = dict(use_3d_center=True, class_merging=False, use_dontcare=False,
                    bbox2d_type='anno', meanshape=False, writelist=['Car'], random_flip=0.5,
                    random_crop=0.5, scale=0.4, shift=0.1)
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--data-root', default=osp.join(REPO, 'demo', 'kitti_mini', 'KITTI'),
                        help='raw KITTI layout (ImageSets/, training/)')
    parser.add_argument('--split', default='train')
    parser.add_argument('--official-root', default=None,
                        help='folder of the official MonoDLE code (has lib/datasets/kitti/)')
    parser.add_argument('--rounds', type=int, default=5, help='timed passes over the frames')
    parser.add_argument('--warmup', type=int, default=1, help='untimed passes first')
    parser.add_argument('--no-targets', action='store_true',
                        help="skip the head's get_targets in our pipeline")
    parser.add_argument('--check-parity', action='store_true',
                        help='also compare, frame by frame with the same seed, our image and '
                        'targets with the official ones (needs --official-root and the head)')
    parser.add_argument('--normalize', action='store_true',
                        help='also normalise our image with the ImageNet mean/std on the CPU, '
                        'as the official __getitem__ does')
    return parser.parse_args(argv)


# ---------------------------------------------------------------------------- ours
def build_ours(data_root: str, split: str, with_targets: bool, normalize: bool):
    """A callable ``frame_index -> None`` running our pipeline (+ targets) on one frame."""
    from mmdet3d.registry import DATASETS, MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    init_default_scope('mmdet3d')
    cfg = Config.fromfile(DATA_CONFIG)
    ds_cfg = cfg.train_dataloader.dataset
    # the targets are timed (and compared) through the head's get_targets below: the same
    # encoding EncodeMonoDLETargets runs in training, counted once
    ds_cfg.update(data_root=data_root, split=split, pipeline=[
        step for step in ds_cfg.pipeline if step['type'] != 'EncodeMonoDLETargets'])
    dataset = DATASETS.build(ds_cfg)

    head = None
    if with_targets:
        try:
            from ..models.dense_heads import CenterNet3DHead  # noqa: F401
            head = MODELS.build(dict(type='CenterNet3DHead'))
        except (ImportError, KeyError) as e:
            print(f'[ours] CenterNet3DHead not available ({e}): timing without targets')
    out_w, out_h = cfg.input_size
    down = getattr(head, 'down_ratio', 4)
    feat_hw = (out_h // down, out_w // down)

    def run(index: int) -> None:
        sample = dataset[index]
        ds = sample['data_samples']
        if normalize:
            img = sample['inputs']['img'].permute(1, 2, 0).numpy()[..., ::-1]  # BGR -> RGB
            img = (img.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
            sample['inputs']['img'] = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        if head is not None:
            head.get_targets([ds.gt_instances_3d], [ds.gt_instances], [ds.metainfo], feat_hw)

    run.dataset, run.head, run.feat_hw = dataset, head, feat_hw
    return run, len(dataset), head is not None


# ---------------------------------------------------------------------------- official
def official_layout(data_root: str, split: str, tmp: str) -> str:
    """``<tmp>/ImageSets`` and ``<tmp>/object/training`` as symlinks to the raw layout."""
    os.symlink(osp.abspath(osp.join(data_root, 'ImageSets')), osp.join(tmp, 'ImageSets'))
    from ..datasets.kitti_io import SPLIT_FOLDERS
    os.makedirs(osp.join(tmp, 'object'))
    folder = SPLIT_FOLDERS[split]
    os.symlink(osp.abspath(osp.join(data_root, folder)), osp.join(tmp, 'object', folder))
    return tmp


def build_official(official_root: str, data_root: str, split: str, tmp: str):
    """A callable ``frame_index -> None`` running the official ``__getitem__``."""
    if not osp.isfile(osp.join(official_root, 'lib', 'datasets', 'kitti', 'kitti_dataset.py')):
        raise FileNotFoundError(f'--official-root {official_root}: '
                                'lib/datasets/kitti/kitti_dataset.py not found')
    sys.path.insert(0, osp.abspath(official_root))
    # its evaluation modules (imported at the top of kitti_dataset.py) play no part in
    # __getitem__; stub them when they cannot be imported here (numba missing, ...)
    try:
        import lib.datasets.kitti.kitti_eval_python.eval  # noqa: F401
        import lib.datasets.kitti.kitti_eval_python.kitti_common  # noqa: F401
    except Exception as e:  # noqa: BLE001
        print(f'[official] evaluation modules not importable ({type(e).__name__}); stubbed')
        for name in ('lib.datasets.kitti.kitti_eval_python',
                     'lib.datasets.kitti.kitti_eval_python.eval',
                     'lib.datasets.kitti.kitti_eval_python.kitti_common'):
            sys.modules[name] = types.ModuleType(name)
        sys.modules['lib.datasets.kitti.kitti_eval_python.eval'].get_official_eval_result = None
        sys.modules['lib.datasets.kitti.kitti_eval_python.eval'].get_distance_eval_result = None
    from lib.datasets.kitti.kitti_dataset import KITTI_Dataset

    cfg = dict(OFFICIAL_CFG, root_dir=official_layout(data_root, split, tmp))
    dataset = KITTI_Dataset(split, cfg)

    def run(index: int) -> None:
        dataset[index]

    run.dataset = dataset
    return run, len(dataset)


def check_parity(ours, official, n: int, seeds: int = 3) -> None:
    """Max |ours - official| of every target, and the image's mean |difference| (grey levels).

    Same numpy seed per frame, so both draw the same flip / crop. The official dataset is run
    with the head's writelist so that both build targets for the same objects.
    """
    official.dataset.writelist = list(ours.head.bbox_coder.writelist)
    worst: dict = {}
    for seed in range(seeds):
        for i in range(n):
            np.random.seed(seed * 1000 + i)
            sample = ours.dataset[i]
            np.random.seed(seed * 1000 + i)
            off_img, off_targets, _ = official.dataset[i]
            img = sample['inputs']['img'].permute(1, 2, 0).numpy()[..., ::-1] / 255.0
            img = ((img - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)
            grey = np.abs(img - off_img) * IMAGENET_STD[:, None, None] * 255
            worst['image (mean grey levels)'] = max(worst.get('image (mean grey levels)', 0),
                                                    float(grey.mean()))
            ds = sample['data_samples']
            targets = ours.head.get_targets([ds.gt_instances_3d], [ds.gt_instances],
                                            [ds.metainfo], ours.feat_hw)
            for key, ref in off_targets.items():
                mine = targets[key][0].numpy().astype(np.float64).reshape(ref.shape)
                diff = float(np.abs(mine - ref).max()) if ref.size else 0.0
                worst[key] = max(worst.get(key, 0.0), diff)
    print(f'parity with the official __getitem__ ({seeds} seeds x {n} frames, '
          f'writelist {list(ours.head.bbox_coder.writelist)}), max |ours - official|:')
    for key, value in worst.items():
        print(f'  {key:<28} {value:.3g}')


# ---------------------------------------------------------------------------- timing
def time_round(run, n: int, seed_base: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        np.random.seed(seed_base + i)
        run(i)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(1)
    import cv2
    cv2.setNumThreads(1)

    ours, n, has_targets = build_ours(args.data_root, args.split, not args.no_targets,
                                      args.normalize)
    runners = {'ours': ours}
    with tempfile.TemporaryDirectory() as tmp:
        if args.official_root:
            official, n_off = build_official(args.official_root, args.data_root, args.split, tmp)
            if n_off != n:
                raise RuntimeError(f'official dataset has {n_off} frames, ours {n}')
            runners['official'] = official
            if args.check_parity:
                if not has_targets:
                    raise RuntimeError('--check-parity needs CenterNet3DHead')
                check_parity(ours, official, n)
        times = {name: [] for name in runners}
        for r in range(args.warmup + args.rounds):
            for name, run in runners.items():
                t = time_round(run, n, seed_base=1000 * r)
                if r >= args.warmup:
                    times[name].append(t)

    what = 'load + augment + pack' + (' + get_targets' if has_targets else '') + \
        (' + CPU normalise' if args.normalize else '')
    print(f'\n{n} frames of {args.data_root} ({args.split}), {args.rounds} rounds, '
          f'1 thread; ours: {what}; official: KITTI_Dataset.__getitem__')
    print(f'{"pipeline":<10} {"median s/round":>15} {"images/s":>10} {"ms/image":>10}')
    rates = {}
    for name, ts in times.items():
        med = statistics.median(ts)
        rates[name] = n / med
        print(f'{name:<10} {med:>15.3f} {rates[name]:>10.1f} {1000 * med / n:>10.1f}')
    if 'official' in rates:
        print(f'ours / official: {rates["ours"] / rates["official"]:.2f}x')
