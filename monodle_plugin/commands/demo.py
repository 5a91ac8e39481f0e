"""Monocular 3D detection on any camera: images / folders / globs / videos -> drawings, KITTI
result lines, JSON lines (``monodle_plugin.apis.MonoDLEInferencer``).

Examples::

    python tools/demo.py demo/kitti_mini/KITTI/training/image_2/000000.png CKPT   # KITTI calib
    python tools/demo.py 'my_frames/*.jpg' CKPT --intrinsics 1000 1000 640 360 --out-dir out
    python tools/demo.py drive.mp4 CKPT --intrinsics cam.yaml --out-dir out --jsonl out/dets.jsonl
    python tools/demo.py IMAGE_DIR CONFIG CKPT --intrinsics calib/ --kitti-dir out/data \\
        --batch-size 8 --show-gt

The config is optional (the checkpoint's own ``meta.cfg``; when both are given and the models
differ, one line says so). Intrinsics (``--intrinsics``, ``--calib`` is the same): a KITTI calib
file or a folder of ``<stem>.txt`` / ``.json`` / ``.yaml``, ``fx fy cx cy``, 9 numbers of K, a
JSON file (``{"K": ...}`` or fx / fy / cx / cy), an OpenCV calibration YAML
(``camera_matrix``); without it, images in a KITTI layout use ``../calib/<stem>.txt``.

Outputs, each optional: ``--out-dir`` drawings (``<stem>.png`` per image, ``<video>.mp4`` per
video: projected boxes + bird's-eye view; ``--no-draw`` skips them), ``--kitti-dir`` KITTI result
lines (``<stem>.txt``, the format ``tools/kitti_eval.py`` reads), ``--jsonl`` one JSON-lines
file (a record per frame: camera-frame boxes with their convention, scores, labels, class names,
2D boxes). ``--score-thr`` only filters the drawn boxes (default: the model's
``test_cfg.score_thr``, the threshold it detects at); the files hold every detection.
Each image is padded / cropped to the training camera's focal length at the network input and
the boxes mapped back to the real camera (``--no-normalize-camera``: off).
Runs headless; a progress bar on stderr; one line per image on stdout.
"""
import argparse
import os.path as osp

import torch
from mmengine.config import DictAction

from ..apis import MonoDLEInferencer
from ..models.detectors import drawing_score_thr
from ..utils.checkpoint_loading import split_config_checkpoint
from ..utils.cli import UserError


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('img', help='image, folder of images, glob pattern (quoted) or video')
    parser.add_argument('files', nargs='+', metavar='[CONFIG] CKPT',
                        help='optional config file, then the checkpoint')
    parser.add_argument('--intrinsics', '--calib', nargs='+', metavar='SPEC',
                        help='KITTI calib file or folder, fx fy cx cy, 9 numbers of K, a JSON or '
                        'OpenCV YAML file; default: ../calib/<stem>.txt next to image_2/')
    parser.add_argument('--out-dir', default='outputs/demo',
                        help='folder for the drawings (PNG per image, MP4 per video)')
    parser.add_argument('--no-draw', action='store_true', help='write no drawings')
    parser.add_argument('--kitti-dir', help='folder for KITTI result lines <stem>.txt')
    parser.add_argument('--jsonl', help='JSON-lines file, one record per frame')
    parser.add_argument('--batch-size', type=int, default=1, help='frames per forward pass')
    parser.add_argument('--score-thr', type=float, default=None,
                        help="drawing threshold (default: the model's test_cfg.score_thr)")
    parser.add_argument('--no-normalize-camera', action='store_true',
                        help='no virtual-camera normalisation (pad / crop to the training '
                        'focal length)')
    parser.add_argument('--show-gt', action='store_true',
                        help='draw ../label_2/<stem>.txt in green when present')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    parser.add_argument('--device', default='cuda:0' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, xxx=yyy format')
    parser.add_argument('--allow-partial-load', action='store_true',
                        help='load only the checkpoint tensors that match the model')
    args = parser.parse_args(argv)
    args.config, args.checkpoint = split_config_checkpoint(args.files)
    if args.batch_size < 1:
        raise UserError(f'--batch-size must be >= 1, got {args.batch_size}')
    return args


def main(argv=None) -> list:
    """Returns the written drawings (PNG / MP4 paths)."""
    args = parse_args(argv)
    inferencer = MonoDLEInferencer(args.checkpoint, args.config, device=args.device,
                                   cfg_options=args.cfg_options,
                                   allow_partial_load=args.allow_partial_load,
                                   normalize_camera=not args.no_normalize_camera,
                                   show_progress=not args.no_progress)
    out_dir = '' if args.no_draw else args.out_dir
    thr = drawing_score_thr(inferencer.model, args.score_thr)
    result = inferencer(args.img, intrinsics=args.intrinsics, batch_size=args.batch_size,
                        out_dir=out_dir, kitti_dir=args.kitti_dir or '',
                        jsonl=args.jsonl or '', pred_score_thr=thr, show_gt=args.show_gt)
    written, videos = [], {}
    for frame, rec in zip(result['frames'], result['predictions']):
        n = sum(s >= thr for s in rec['scores_3d'])
        if frame.video is not None:
            videos.setdefault(frame.video, [0, 0])
            videos[frame.video][0] += 1
            videos[frame.video][1] += n
            continue
        out = osp.join(out_dir, frame.name + '.png') if out_dir else '(not drawn)'
        written += [out] if out_dir else []
        print(f'{frame.path}: {n} object(s) with score >= {thr} -> {out}')
    for video, (frames, n) in videos.items():
        stem = osp.splitext(osp.basename(video))[0]
        out = osp.join(out_dir, stem + '.mp4') if out_dir else '(not drawn)'
        written += [out] if out_dir else []
        print(f'{video}: {frames} frames, {n} object(s) with score >= {thr} -> {out}')
    for what, path in (('KITTI result lines', args.kitti_dir), ('JSON lines', args.jsonl)):
        if path:
            print(f'{what}: {path}')
    return written
