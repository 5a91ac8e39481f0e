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
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.dataset import Compose, pseudo_collate  # noqa: E402

import monodle_plugin  # noqa: E402,F401  (registers every component)
from monodle_plugin.datasets.kitti_io import read_calib, read_label  # noqa: E402
from monodle_plugin.utils.checkpoint_loading import (  # noqa: E402
    load_weights_strict,
    skip_backbone_pretrained,
)
from monodle_plugin.utils.cli import run_cli  # noqa: E402
from monodle_plugin.utils.config_checks import check_cfg_option_keys  # noqa: E402
from monodle_plugin.utils.env_check import check_environment  # noqa: E402
from monodle_plugin.utils.mono3d_drawing import draw_mono3d_result  # noqa: E402

IMAGE_EXTS = ('.png', '.jpg', '.jpeg', '.bmp')


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


def list_images(path: str) -> list:
    """Sorted image files of ``path`` (a file or a folder)."""
    if osp.isfile(path):
        return [path]
    if osp.isdir(path):
        files = sorted(osp.join(path, f) for f in os.listdir(path)
                       if f.lower().endswith(IMAGE_EXTS))
        if not files:
            raise FileNotFoundError(f'{path}: folder holds no image ({", ".join(IMAGE_EXTS)})')
        return files
    raise FileNotFoundError(f'image file or folder not found: {path}')


def _kitti_sibling(img_path: str, folder: str, ext: str) -> str:
    stem = osp.splitext(osp.basename(img_path))[0]
    return osp.join(osp.dirname(osp.dirname(osp.abspath(img_path))), folder, stem + ext)


def calib_path_for(img_path: str, calib: str = None) -> str:
    """The calibration file of ``img_path`` (see the module docstring); clear error if none."""
    stem = osp.splitext(osp.basename(img_path))[0]
    if calib is None:
        path = _kitti_sibling(img_path, 'calib', '.txt')
        hint = 'give --calib FILE_OR_FOLDER'
    elif osp.isdir(calib):
        path, hint = osp.join(calib, stem + '.txt'), f'--calib folder {calib}'
    else:
        path, hint = calib, '--calib'
    if not osp.isfile(path):
        raise FileNotFoundError(f'{img_path}: calibration {path} not found ({hint})')
    return path


def build_detector(config: str, checkpoint: str, device: str, cfg_options=None,
                   allow_partial_load: bool = False):
    """(model in eval mode, test pipeline) from a config and a checkpoint.

    The model is built by ``mmdet3d.apis.init_model`` (SyncBN -> BN, ``model.cfg``, device,
    eval mode) without its checkpoint loading, which is not strict (a missing or mis-shaped
    tensor would leave random weights silently); the weights are loaded by
    ``load_weights_strict`` instead.
    """
    import warnings

    from mmdet3d.apis import init_model
    for path, what in ((config, 'config file'), (checkpoint, 'checkpoint')):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{what} not found: {path}')
    cfg = Config.fromfile(config)
    if cfg_options:
        check_cfg_option_keys(cfg, cfg_options, config)
        cfg.merge_from_dict(cfg_options)
    skip_backbone_pretrained(cfg.model)  # the checkpoint holds every weight
    with warnings.catch_warnings():  # init_model's "Don't suggest using CPU device"
        warnings.filterwarnings('ignore', message="Don't suggest using CPU")
        model = init_model(cfg, None, device=device)
    load_weights_strict(model, checkpoint, config, allow_partial_load)
    model.to(device).eval()
    pipeline = Compose(cfg.test_dataloader.dataset.pipeline)
    return model, pipeline


@torch.no_grad()
def detect(model, pipeline, img_path: str, cam2img: np.ndarray, index: int = 0):
    """Run the test pipeline and the model on one image; returns its data sample."""
    stem = osp.splitext(osp.basename(img_path))[0]
    info = dict(img_path=img_path, cam2img=cam2img, sample_idx=index, sample_id=stem)
    data = pipeline(info)
    return model.test_step(pseudo_collate([data]))[0]


def main(argv=None) -> list:
    args = parse_args(argv)
    images = list_images(args.img)
    model, pipeline = build_detector(args.config, args.checkpoint, args.device,
                                     args.cfg_options, args.allow_partial_load)
    os.makedirs(args.out_dir, exist_ok=True)
    written = []
    for i, img_path in enumerate(images):
        cam2img = read_calib(calib_path_for(img_path, args.calib))['cam2img']
        sample = detect(model, pipeline, img_path, cam2img, i)
        pred = sample.pred_instances_3d
        scores = pred.scores_3d.cpu().numpy()
        keep = scores >= args.score_thr
        boxes = pred.bboxes_3d.tensor.cpu().numpy()[keep, :7]
        labels = pred.labels_3d.cpu().numpy()[keep]
        gt = None
        label_path = _kitti_sibling(img_path, 'label_2', '.txt')
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
