#!/usr/bin/env python
"""Export a MonoDLE checkpoint (backbone + neck + head) to ONNX; optionally check it.

Examples::

    python tools/deployment/export_onnx.py configs/ablation/monodle_yolo8_kitti.py CKPT \\
        monodle_yolo8.onnx --verify
    python tools/deployment/export_onnx.py CONFIG CKPT out.onnx --dynamic   # free B, H, W

The graph takes the normalised image ``img`` (B, 3, H, W) and returns the seven raw head maps
(heatmap, offset_2d, size_2d, depth, offset_3d, size_3d, heading). Decoding is the numpy step of
``monodle_plugin/deployment/numpy_runtime.py`` (``tools/deployment/ort_infer.py`` runs it);
its parameters are stored in the file's metadata (key ``monodle``). ``--verify`` runs PyTorch
and onnxruntime on the same inputs (a random image and, when it exists, a real KITTI frame
through the numpy pre-processing) and fails unless every branch agrees within
``--tolerance`` (max |ort - torch| / max |torch|, default 1e-4): then it exits 1. CKPT ``none``
exports random weights (for speed measurements only). A missing or unusable config / checkpoint /
file ends with one line ``error: ...`` and exit status 2 (``--debug``: the traceback).
"""
import argparse
import os.path as osp
import sys
from typing import Union

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, REPO_ROOT)

DEFAULT_IMAGE = osp.join(REPO_ROOT, 'demo', 'kitti_mini', 'KITTI', 'training', 'image_2',
                         '000000.png')


def parse_args(argv=None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file (or "none": random weights)')
    parser.add_argument('out', help='output .onnx file')
    parser.add_argument('--verify', action='store_true',
                        help='compare onnxruntime with PyTorch on the same inputs')
    parser.add_argument('--dynamic', action='store_true',
                        help='free batch / height / width (multiples of 32)')
    parser.add_argument('--input-size', type=int, nargs=2, metavar=('W', 'H'),
                        help='network input (default: the test pipeline\'s, 1280 384)')
    parser.add_argument('--image', default=DEFAULT_IMAGE,
                        help='real image used by --verify (default: a kitti_mini frame)')
    parser.add_argument('--tolerance', type=float, default=1e-4,
                        help='--verify: max relative error allowed per branch')
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, xxx=yyy format')
    return parser.parse_args(argv)


def main(argv=None) -> Union[dict, int]:
    """Returns ``{'meta': ..., 'errors': ...}``, or 1 when ``--verify`` finds a difference."""
    args = parse_args(argv)
    import cv2
    import numpy as np

    import monodle_plugin  # noqa: F401  (registers every component)
    from monodle_plugin.deployment import onnx_export
    from monodle_plugin.deployment.numpy_runtime import preprocess

    ckpt = None if args.checkpoint.lower() == 'none' else args.checkpoint
    model, cfg = onnx_export.build_model_for_export(args.config, ckpt, args.cfg_options)
    size = tuple(args.input_size) if args.input_size else onnx_export.pipeline_input_size(cfg)
    meta = onnx_export.export_onnx(model, args.out, size, dynamic=args.dynamic,
                                   opset=args.opset)
    print(f'wrote {args.out} (input 1x3x{size[1]}x{size[0]}'
          f'{", dynamic B/H/W" if args.dynamic else ""}; outputs {", ".join(meta["outputs"])})')
    result = dict(meta=meta)
    if args.verify:
        rng = np.random.default_rng(0)
        inputs = [rng.standard_normal((1, 3, size[1], size[0])).astype(np.float32)]
        if args.image and osp.isfile(args.image):
            img = cv2.imread(args.image, cv2.IMREAD_COLOR)
            inputs.append(preprocess(img, meta)[0])
        try:
            errs = onnx_export.verify_onnx(model, args.out, inputs, args.tolerance)
        except AssertionError as e:  # a finding, not a user error: exit status 1
            print(f'export_onnx: {e}', file=sys.stderr)
            return 1
        print('onnxruntime vs PyTorch, max relative error per branch: ' +
              ', '.join(f'{k} {v:.2e}' for k, v in errs.items()) +
              f' (all <= {args.tolerance:g}, {len(inputs)} inputs)')
        result['errors'] = errs
    return result


if __name__ == '__main__':
    from monodle_plugin.utils.cli import run_cli
    run_cli(main)
