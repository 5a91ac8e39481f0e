#!/usr/bin/env python
"""Monocular 3D detection demo: image(s) + calibration -> PNG with 3D boxes and a BEV panel.

Examples::

    python tools/demo.py demo/kitti_mini/KITTI/training/image_2/000000.png \\
        configs/monodle/monodle_dla34_kitti.py CKPT --out-dir outputs/demo
    python tools/demo.py IMAGE_DIR CONFIG CKPT --calib CALIB_DIR --out-dir out --show-gt

``--calib`` is a KITTI calibration file (the same P2 for every image) or a folder with
``<image stem>.txt`` files. Without it, images in a KITTI layout (``.../image_2/<id>.png``) use
``.../calib/<id>.txt``. ``--show-gt`` also draws ``.../label_2/<id>.txt`` in green when found.
Runs headless (OpenCV); writes ``<out-dir>/<image stem>.png`` and prints one line per image.
"""
import argparse
import os
import os.path as osp
import sys

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import DictAction  # noqa: E402

import monodle_plugin  # noqa: E402,F401  (registers every component)
from monodle_plugin.apis import (  # noqa: E402
    build_detector,
    calib_path_for,
    detect_image,
    kitti_sibling,
    list_images,
)
from monodle_plugin.datasets.kitti_io import read_calib, read_label  # noqa: E402
from monodle_plugin.utils.cli import run_cli  # noqa: E402
from monodle_plugin.utils.env_check import check_environment  # noqa: E402
from monodle_plugin.utils.mono3d_drawing import draw_mono3d_result  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('img', help='image file or folder of images')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--calib', help='KITTI calib file (for all images) or folder of '
                        '<stem>.txt; default: ../calib/<stem>.txt next to image_2/')
    parser.add_argument('--out-dir', default='outputs/demo', help='folder for the PNGs')
    parser.add_argument('--score-thr', type=float, default=0.2, help='drawing threshold')
    parser.add_argument('--show-gt', action='store_true',
                        help='draw ../label_2/<stem>.txt in green when present')
    parser.add_argument('--device', default='cuda:0' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, xxx=yyy format')
    parser.add_argument('--allow-partial-load', action='store_true',
                        help='load only the checkpoint tensors that match the model')
    return parser.parse_args(argv)


def main(argv=None) -> list:
    args = parse_args(argv)
    images = list_images(args.img)
    model, pipeline = build_detector(args.config, args.checkpoint, args.device,
                                     args.cfg_options, args.allow_partial_load)
    os.makedirs(args.out_dir, exist_ok=True)
    written = []
    for i, img_path in enumerate(images):
        calib_path = calib_path_for(img_path, args.calib)
        cam2img = read_calib(calib_path)['cam2img']
        sample = detect_image(model, pipeline, img_path, cam2img, i, calib_path)
        pred = sample.pred_instances_3d
        scores = pred.scores_3d.cpu().numpy()
        keep = scores >= args.score_thr
        boxes = pred.bboxes_3d.tensor.cpu().numpy()[keep, :7]
        labels = pred.labels_3d.cpu().numpy()[keep]
        gt = None
        label_path = kitti_sibling(img_path, 'label_2', '.txt')
        if args.show_gt and osp.isfile(label_path):
            gt = np.array([ins['bbox_3d'] for ins in read_label(label_path)
                           if ins['name'] != 'DontCare'], dtype=np.float64).reshape(-1, 7)
        img = cv2.imread(img_path)
        if img is None:
            raise OSError(f'{img_path}: image could not be read')
        canvas = draw_mono3d_result(img, cam2img, boxes, labels, scores[keep], gt_boxes=gt,
                                    title=osp.basename(img_path))
        out = osp.join(args.out_dir, osp.splitext(osp.basename(img_path))[0] + '.png')
        cv2.imwrite(out, canvas)
        written.append(out)
        print(f'{img_path}: {int(keep.sum())} object(s) with score >= {args.score_thr} '
              f'-> {out}')
    return written


if __name__ == '__main__':
    check_environment()
    run_cli(main)
