"""Check that the plugin's DLA-34 MonoDLE equals the official implementation number for number.

Usage (the official code is fetched by the user into any folder; it is never committed):
    git clone https://github.com/xinzhuma/monodle /tmp/monodle
    python tools/analysis_tools/check_official_parity.py --official-root /tmp/monodle

Builds the official ``CenterNet3D`` (DLA-34, ``pretrained=False``: no download), randomises
all its parameters and BatchNorm statistics (so that a wrong mapping cannot hide behind
identical initial values), converts its state dict with ``convert_monodle_checkpoint``,
loads it strictly into the plugin model, runs both on the same input (eval mode), then
prints the max relative difference of each of the seven raw outputs (max |a - b| / max |b|)
and compares the decoded boxes of the official decoder with ``predict_by_feat``.

With ``--targets-data-root demo/kitti_mini/KITTI`` it also runs the official
``KITTI_Dataset.__getitem__`` (train split, flip 0.5 / crop 0.5) and this plugin's pipeline +
``CenterNet3DHead.get_targets`` on every frame with the same numpy seeds (both draw the
augmentation in the same order) and compares all training targets and the input image.
The models run on the CPU; with CUDA available, TF32 is switched off all the same (one line
says so: ``monodle_plugin/utils/tf32.py``). Exit code 1 when a tolerance is exceeded; 2 with
one line ``error: ...`` for a wrong ``--official-root`` / ``--calib`` (``--debug``: the
traceback).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from ..utils.cli import UserError

REPO = Path(__file__).resolve().parents[2]  # the checkout (configs/, demo/)

BRANCHES = ('heatmap', 'offset_2d', 'size_2d', 'depth', 'offset_3d', 'size_3d', 'heading')


def build_official(root: Path) -> tuple[torch.nn.Module, dict]:
    """Official CenterNet3D (DLA-34) without the ImageNet download, plus its helpers."""
    if not (root / 'lib' / 'models' / 'centernet3d.py').is_file():
        raise UserError(f'{root}: not a MonoDLE checkout (lib/models/centernet3d.py missing); '
                        'give --official-root, a clone of https://github.com/xinzhuma/monodle')
    sys.path.insert(0, str(root))
    import lib.backbones.dla as dla
    from lib.datasets.kitti.kitti_utils import Calibration
    from lib.helpers.decode_helper import decode_detections, extract_dets_from_outputs
    from lib.models.centernet3d import CenterNet3D

    original = dla.dla34
    dla.dla34 = lambda pretrained=False, **kw: original(pretrained=False, **kw)
    try:
        model = CenterNet3D(backbone='dla34', neck='DLAUp', num_class=3)
    finally:
        dla.dla34 = original
    return model, dict(Calibration=Calibration, decode=decode_detections,
                       extract=extract_dets_from_outputs)


@torch.no_grad()
def randomise(model: torch.nn.Module, gen: torch.Generator) -> None:
    """Random BatchNorm affine/statistics and head weights that give detections."""
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            n = mod.num_features
            mod.weight.copy_(torch.rand(n, generator=gen) + 0.5)
            mod.bias.copy_(torch.randn(n, generator=gen) * 0.1)
            mod.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
            mod.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
        elif isinstance(mod, torch.nn.Conv2d) and name.split('.')[0] in BRANCHES:
            mod.weight.copy_(torch.randn(mod.weight.shape, generator=gen) * 0.03)
            mod.bias.copy_(torch.randn(mod.bias.shape, generator=gen) * 0.3)
    # realistic depths (1 / sigmoid(x) - 1 in about 5..50 m) instead of overflowing ones
    model.depth[2].weight.mul_(0.1)
    model.depth[2].bias.copy_(torch.tensor([-3.0, 0.0]))


def build_plugin(config: str, fuse: bool) -> torch.nn.Module:
    from mmdet3d.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    cfg = Config.fromfile(str(REPO / config))
    init_default_scope('mmdet3d')
    cfg.model.bbox_head.fuse_branches = fuse
    return MODELS.build(cfg.model)


def read_p2(calib_file: Path) -> np.ndarray:
    """(4, 4) P2 of a KITTI calib file (:func:`monodle_kitti.kitti_io.read_calib`)."""
    from monodle_kitti.kitti_io import read_calib
    return read_calib(str(calib_file))['cam2img']


def check_targets(root: Path, data_root: Path, seeds: list[int], writelist: list[str],
                  head) -> bool:
    """Official ``KITTI_Dataset.__getitem__`` vs this plugin's pipeline + head targets.

    Both draw MonoDLE's augmentation from ``np.random`` in the same order, so the same
    seed gives the same flip / crop on both sides.
    """
    import tempfile
    import types

    # the official evaluation imports numba.cuda at import time (fails without a GPU);
    # __getitem__ does not need it
    package = 'lib.datasets.kitti.kitti_eval_python'
    sys.modules.setdefault(package, types.ModuleType(package))
    for name in ('eval', 'kitti_common'):
        stub = types.ModuleType(f'{package}.{name}')
        stub.get_official_eval_result = stub.get_distance_eval_result = None
        sys.modules.setdefault(f'{package}.{name}', stub)
        setattr(sys.modules[package], name, sys.modules[f'{package}.{name}'])
    from lib.datasets.kitti.kitti_dataset import KITTI_Dataset
    from lib.losses import centernet_loss
    tmp = Path(tempfile.mkdtemp(prefix='monodle_parity_'))
    (tmp / 'object').mkdir()
    (tmp / 'object' / 'training').symlink_to((data_root / 'training').resolve())
    (tmp / 'ImageSets').symlink_to((data_root / 'ImageSets').resolve())
    official = KITTI_Dataset('train', dict(root_dir=str(tmp), writelist=list(writelist),
                                           random_flip=0.5, random_crop=0.5, scale=0.4,
                                           shift=0.1))
    from mmdet3d.registry import DATASETS

    from ..structures.classes import MONODLE_CLASSES
    pipeline = [
        dict(type='LoadKittiMonoImage'), dict(type='LoadMonoDLEAnnotations'),
        dict(type='MonoDLEAffineAug', output_size=(1280, 384), random_flip=0.5,
             random_crop=0.5, scale=0.4, shift=0.1),
        dict(type='PackMonoDLEInputs')]
    ours = DATASETS.build(dict(type='MonoDLEKittiDataset', data_root=str(data_root) + '/',
                               split='train', pipeline=pipeline, test_mode=False,
                               metainfo=dict(classes=MONODLE_CLASSES)))
    head.bbox_coder.writelist = tuple(writelist)
    mean = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None]
    std = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]
    worst = dict(heatmap=0.0, regression=0.0, image_max=0.0, image_mean=0.0, loss=0.0)
    names = dict(seg='heatmap', offset2d='offset_2d', size2d='size_2d', offset3d='offset_3d',
                 depth='depth', size3d='size_3d', heading='heading')
    gen = torch.Generator().manual_seed(1)
    # the official heading loss calls .cuda(); on CPU make it a no-op
    original_cuda = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *a, **k: self
    same_masks, n_objects = True, 0
    for idx in range(len(official)):
        for seed in seeds:
            np.random.seed(seed)
            img_ref, tgt, _ = official[idx]
            np.random.seed(seed)
            packed = ours.prepare_data(idx)
            ds = packed['data_samples']
            t = head.get_targets([ds.gt_instances_3d], [ds.gt_instances], [ds.metainfo],
                                 (96, 320))
            t = {k: v[0].numpy() for k, v in t.items()}
            img = packed['inputs']['img'].numpy()[::-1].astype(np.float32) / 255
            img = (img - mean) / std
            worst['image_max'] = max(worst['image_max'], float(np.abs(img - img_ref).max()))
            worst['image_mean'] = max(worst['image_mean'], float(np.abs(img - img_ref).mean()))
            worst['heatmap'] = max(worst['heatmap'],
                                   float(np.abs(t['heatmap'] - tgt['heatmap']).max()))
            for key in ('mask_2d', 'mask_3d'):
                same_masks &= np.array_equal(t[key], tgt[key].astype(bool))
            m = t['mask_2d']
            n_objects += int(m.sum())
            if tgt['mask_2d'].any() and tgt['mask_3d'].any():
                outs = {k: torch.randn(1, c, 96, 320, generator=gen)
                        for k, c in head.out_channels.items()}
                ref_t = {k: torch.as_tensor(v)[None] for k, v in tgt.items()}
                for key in ('mask_2d', 'mask_3d'):
                    ref_t[key] = ref_t[key].bool()
                _, stats = centernet_loss.compute_centernet3d_loss(
                    {k: v.clone() for k, v in outs.items()}, ref_t)
                mine = head.loss_by_feat(outs, [ds])
                for key, value in stats.items():
                    ours_v = mine[f'loss_{names[key]}'].item()
                    worst['loss'] = max(worst['loss'],
                                        abs(ours_v - value) / max(abs(value), 1e-6))
            same_masks &= np.array_equal(t['indices'][m], tgt['indices'][m])
            same_masks &= np.array_equal(t['heading_bin'][m], tgt['heading_bin'][m])
            for key in ('offset_2d', 'size_2d', 'depth', 'heading_res', 'offset_3d', 'size_3d'):
                diff = np.abs(t[key][m] - tgt[key][m])
                worst['regression'] = max(worst['regression'], float(diff.max(initial=0)))
    torch.Tensor.cuda = original_cuda
    print(f'targets over {len(official)} frames x {len(seeds)} seeds (writelist {writelist}, '
          f'{n_objects} objects): masks/indices/bins identical: {same_masks}; '
          f'max |diff| heatmap {worst["heatmap"]:.1e}, regression targets '
          f'{worst["regression"]:.1e}; image (normalised) max {worst["image_max"]:.2f} '
          f'mean {worst["image_mean"]:.1e}; the seven losses on random outputs vs official '
          f'compute_centernet3d_loss: max rel diff {worst["loss"]:.1e}')
    return (same_masks and worst['heatmap'] < 1e-5 and worst['regression'] < 1e-4
            and worst['loss'] < 1e-4)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--official-root', required=True, type=Path)
    parser.add_argument('--config', default='configs/monodle/monodle_dla34_kitti.py')
    parser.add_argument('--calib', type=Path,
                        default=REPO / 'demo/kitti_mini/KITTI/training/calib/000000.txt')
    parser.add_argument('--raw-size', type=int, nargs=2, default=(1242, 375),
                        metavar=('W', 'H'), help='raw image size used for decoding')
    parser.add_argument('--input-size', type=int, nargs=2, default=(1280, 384),
                        metavar=('W', 'H'))
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--rtol', type=float, default=1e-5)
    parser.add_argument('--targets-data-root', type=Path, default=None,
                        help='raw KITTI folder: also compare training targets with the '
                        "official dataset's (e.g. demo/kitti_mini/KITTI)")
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2, 3])
    args = parser.parse_args(argv)
    if not args.calib.is_file():
        raise UserError(f'calibration file not found: {args.calib} (give --calib)')
    torch.set_num_threads(args.threads)
    from ..utils.tf32 import switch_off_tf32
    tf32_line = switch_off_tf32()  # exact float32 wherever CUDA kernels would run
    if tf32_line:
        print(tf32_line)
    gen = torch.Generator().manual_seed(args.seed)

    official, helpers = build_official(args.official_root.resolve())
    randomise(official, gen)
    official.eval()
    from ..models.utils import official_checkpoint as converter
    ok = True
    width, height = args.input_size
    x = torch.randn(1, 3, height, width, generator=gen)
    with torch.no_grad():
        ref = official(x)
    ref = {k: v.clone() for k, v in ref.items()}

    for fuse in (True, False):
        plugin = build_plugin(args.config, fuse)
        converted = converter.convert_state_dict(official.state_dict(), plugin.state_dict())
        plugin.load_state_dict(converted, strict=True)
        plugin.eval()
        with torch.no_grad():
            feats = plugin.extract_feat({'imgs': x})
            out = plugin.bbox_head(feats)
        print(f'raw outputs, fuse_branches={fuse}: max|a-b| / max|b|')
        for name in BRANCHES:
            diff = (out[name] - ref[name]).abs().max().item()
            rel = diff / max(ref[name].abs().max().item(), 1e-12)
            ok &= rel <= args.rtol
            print(f'  {name:10s} rel {rel:.2e}  abs {diff:.2e}  shape {tuple(ref[name].shape)}')

    # decoding: official extract + decode (numpy) vs predict_by_feat('official')
    p2 = read_p2(args.calib)
    calib = helpers['Calibration'](str(args.calib))
    raw_w, raw_h = args.raw_size
    feat_size = np.array([width // 4, height // 4])
    info = {'img_id': [0], 'img_size': [np.array([raw_w, raw_h])],
            'bbox_downsample_ratio': [np.array([raw_w, raw_h]) / feat_size]}
    dets = helpers['extract']({k: v.clone() for k, v in ref.items()}, K=50)
    preds = helpers['decode'](dets.numpy(), info, [calib], np.zeros((3, 3), np.float32), 0.2)[0]
    meta = dict(ori_shape=(raw_h, raw_w), img_shape=(height, width), cam2img=p2.tolist())
    res3d, res2d = plugin.bbox_head.predict_by_feat(out, [meta])
    res, res2d = res3d[0], res2d[0]
    print(f'decoded: official {len(preds)} boxes, plugin {len(res)} boxes')
    if len(preds) != len(res):
        return 1
    if preds:
        # official row: cls, alpha, x1 y1 x2 y2, h w l, x y z, ry, score
        off = np.array(preds, dtype=np.float64)
        b3d = res.bboxes_3d.tensor.numpy().astype(np.float64)
        mine = np.concatenate([
            res.labels_3d.numpy()[:, None], res.alphas.numpy()[:, None], res2d.bboxes.numpy(),
            b3d[:, [4, 5, 3]], b3d[:, :3], b3d[:, 6:7], res.scores_3d.numpy()[:, None]], 1)
        # the plugin stores boxes in float32 (CameraInstance3DBoxes): relative differences
        diff = np.abs(off - mine) / np.maximum(1.0, np.abs(off))
        fields = dict(cls=diff[:, 0], alpha=diff[:, 1], box2d=diff[:, 2:6], dims=diff[:, 6:9],
                      loc=diff[:, 9:12], ry=diff[:, 12], score=diff[:, 13])
        print('  max |diff| / max(1, |official|): '
              + ' '.join(f'{k} {v.max():.1e}' for k, v in fields.items()))
        flips = int((np.round(off[:, 1:], 2) != np.round(mine[:, 1:], 2)).sum())
        print(f'  values that differ when written with 2 decimals (KITTI result files): '
              f'{flips} of {off[:, 1:].size} (float32 box storage at a rounding boundary)')
        ok &= bool((diff[:, 0] == 0).all()) and diff.max() < 1e-5
    if args.targets_data_root is not None:
        from ..structures.classes import MONODLE_CLASSES
        for writelist in (['Car'], list(MONODLE_CLASSES)):
            ok &= check_targets(args.official_root.resolve(), args.targets_data_root,
                                args.seeds, writelist, plugin.bbox_head)
    print('PARITY OK' if ok else 'PARITY FAILED')
    return 0 if ok else 1
