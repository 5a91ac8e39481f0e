"""Export a MonoDLE checkpoint (backbone + neck + head) to ONNX; optionally check it.

Examples::

    python tools/deployment/export_onnx.py configs/ablation/monodle_yolo8_kitti.py CKPT \\
        monodle_yolo8.onnx --verify
    python tools/deployment/export_onnx.py CONFIG CKPT out.onnx --dynamic   # free B, H, W
    python tools/deployment/export_onnx.py CKPT out.onnx    # the checkpoint's config (meta.cfg)
    python tools/deployment/export_onnx.py CONFIG CKPT out.onnx --verify \
        --int8 --calib-images data/KITTI/training/image_2 --calib-count 32  # + out.int8.onnx

The graph is the whole detector, decoding included (the box coder's top-k and geometry, as
``tools/test.py`` decodes): inputs the normalised image ``img`` (B, 3, H, W), ``cam2img``
(B, 4, 4) float64 and ``ori_shape`` (B, 2) int64 (``decode_mode='official'``) or
``inv_affine_mat`` (B, 3, 3) float64 (``'affine'``); outputs the K = ``test_cfg.topk`` peaks of
each image (``bboxes_3d``, ``scores_3d``, ``labels_3d``, ``bboxes_2d``, ``alphas``,
``heatmap_scores``, ``peaks``; the score threshold is applied outside the graph) and the seven
raw head maps. ``tools/deployment/ort_infer.py`` runs it; the pre-processing parameters are
stored in the file's metadata (key ``monodle``). ``--verify`` runs PyTorch and onnxruntime on
the same inputs (a random image and, when it exists, a real KITTI frame through the numpy
pre-processing) and fails unless every raw branch agrees within ``--tolerance`` (max |ort -
torch| / max |torch|, default 1e-4) and the detections above the score threshold within
``onnx_export.DETECTION_TOLERANCE``: then it exits 1. CKPT ``none``
exports random weights (for speed measurements only). A missing or unusable config / checkpoint /
file ends with one line ``error: ...`` and exit status 2 (``--debug``: the traceback).

``--int8`` also writes ``<out>.int8.onnx``: static int8 quantisation with onnxruntime's tooling
(``monodle_plugin/deployment/int8.py``: per-channel int8 weights, uint8 activations calibrated
on ``--calib-count`` frames of ``--calib-images`` through the inference pre-processing). The
final 1x1 convolution of each head branch stays float (``--int8-outputs``: quantised too),
with any ``--keep-float`` layer; the list is printed and stored in the file's metadata
(``monodle_int8``). With ``--verify`` the int8
model is compared with the float one on ``--image`` (a file or a folder): raw branch errors and,
where the KITTI calibration is found, matched detections; outside ``int8.AGREEMENT_BOUNDS``
the tool exits 1.
"""
import argparse
import os.path as osp
import sys
from typing import Union

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))  # the checkout


DEFAULT_IMAGE = osp.join(REPO_ROOT, 'demo', 'kitti_mini', 'KITTI', 'training', 'image_2',
                         '000000.png')


def parse_args(argv=None) -> argparse.Namespace:
    from mmengine.config import DictAction

    from ..deployment.int8 import DEFAULT_CALIB_COUNT, DEFAULT_FORMAT, FORMATS
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('files', nargs='+', metavar='[CONFIG] CKPT OUT',
                        help='optional config file (default: the checkpoint\'s own, meta.cfg), '
                        'the checkpoint (or "none": random weights, needs CONFIG) and the '
                        'output .onnx file')
    parser.add_argument('--verify', action='store_true',
                        help='compare onnxruntime with PyTorch on the same inputs')
    parser.add_argument('--dynamic', action='store_true',
                        help='free batch / height / width (multiples of 32)')
    parser.add_argument('--input-size', type=int, nargs=2, metavar=('W', 'H'),
                        help='network input (default: the test pipeline\'s, 1280 384)')
    parser.add_argument('--image', default=DEFAULT_IMAGE,
                        help='real image (or folder of images) used by --verify (default: a '
                        'kitti_mini frame)')
    parser.add_argument('--tolerance', type=float, default=1e-4,
                        help='--verify: max relative error allowed per branch')
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--int8', action='store_true',
                        help='also write the static int8 model <out>.int8.onnx')
    parser.add_argument('--calib-images', metavar='DIR',
                        help='--int8: folder of raw frames for the activation ranges')
    parser.add_argument('--calib-count', type=int, metavar='N',
                        help=f'--int8: frames used, spread over the folder (default '
                        f'{DEFAULT_CALIB_COUNT}, or all if fewer)')
    parser.add_argument('--keep-float', nargs='+', default=[], metavar='LAYER',
                        help='--int8: more layers kept float (module paths, e.g. '
                        'bbox_head.depth.0), besides the final 1x1 layer of each branch')
    parser.add_argument('--int8-outputs', action='store_true',
                        help='--int8: quantise the final 1x1 layer of each branch too (faster; '
                        'see docs/en/deployment.md for the measured accuracy cost)')
    parser.add_argument('--int8-format', choices=FORMATS, default=DEFAULT_FORMAT,
                        help=f'--int8: onnxruntime quantisation format (default {DEFAULT_FORMAT})')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, xxx=yyy format')
    args = parser.parse_args(argv)
    from ..utils.checkpoint_loading import split_config_checkpoint
    if len(args.files) < 2:
        parser.error('expected [CONFIG] CKPT OUT')
    *model_files, args.out = args.files
    args.config, args.checkpoint = split_config_checkpoint(model_files)
    if args.config is None and args.checkpoint.lower() == 'none':
        parser.error('CKPT "none" (random weights) needs the CONFIG before it')
    return args


def main(argv=None) -> Union[dict, int]:
    """Returns ``{'meta': ..., 'errors': ..., 'int8': ..., 'agreement': ...}`` (the last two
    with ``--int8``), or 1 when ``--verify`` finds a difference."""
    args = parse_args(argv)
    import cv2

    from monodle_kitti.numpy_runtime import (
        frame_feeds,
        kitti_sibling,
        list_images,
        read_p2,
    )

    from ..deployment import int8, onnx_export
    from ..utils.cli import UserError

    int8_only = dict(calib_images='--calib-images', calib_count='--calib-count',
                     keep_float='--keep-float', int8_outputs='--int8-outputs')
    given = [flag for key, flag in int8_only.items() if getattr(args, key)]
    if args.int8_format != int8.DEFAULT_FORMAT:
        given.append('--int8-format')
    if given and not args.int8:
        raise UserError(f'{", ".join(given)} only apply to the int8 export: add --int8')
    calib_images = []
    if args.int8:
        if not args.calib_images:
            raise UserError('--int8 needs --calib-images DIR: raw frames of the target camera '
                            '(e.g. data/KITTI/training/image_2) for the activation ranges')
        calib_images = int8.pick_calibration_images(args.calib_images, args.calib_count)
    verify_images = []
    if args.verify and args.image:
        if osp.exists(args.image) or args.image != DEFAULT_IMAGE:
            verify_images = list_images(args.image)  # a clear error if missing
    if args.verify and args.int8 and not verify_images:
        raise UserError(f'--verify --int8 compares the models on real frames: {DEFAULT_IMAGE} '
                        'is missing, give --image FILE_OR_FOLDER')

    cli_size = (onnx_export.check_input_size(args.input_size, '--input-size')
                if args.input_size else None)
    ckpt = None if args.checkpoint.lower() == 'none' else args.checkpoint
    model, cfg = onnx_export.build_model_for_export(args.config, ckpt, args.cfg_options)
    size = cli_size or onnx_export.pipeline_input_size(cfg)  # checked: two positive ints
    meta = onnx_export.export_onnx(model, args.out, size, dynamic=args.dynamic,
                                   opset=args.opset)
    print(f'wrote {args.out} (input 1x3x{size[1]}x{size[0]}'
          f'{", dynamic B/H/W" if args.dynamic else ""}, {", ".join(meta["inputs"][1:])}; '
          f'outputs the {meta["topk"]} decoded peaks {", ".join(meta["detections"])} and the '
          f'raw maps {", ".join(meta["outputs"])})')
    result = dict(meta=meta)
    if args.int8:
        int8_path = int8.int8_path_for(args.out)
        record = int8.quantize_int8(args.out, int8_path, calib_images, args.keep_float,
                                    args.int8_format, quantize_outputs=args.int8_outputs)
        print(f'wrote {int8_path} (static int8, {record["format"]}, per-channel weights, '
              f'{len(calib_images)} calibration frames from {args.calib_images}; '
              f'{osp.getsize(int8_path) / 2**20:.1f} MiB vs {osp.getsize(args.out) / 2**20:.1f}'
              f' MiB float); kept float: {", ".join(record["float_layers"]) or "none"}')
        result['int8'] = record
    if args.verify:
        inputs = [onnx_export.example_feeds(meta)]  # a random image, a KITTI camera
        for path in verify_images:
            calib = kitti_sibling(path, 'calib', '.txt')
            inputs.append(frame_feeds(cv2.imread(path, cv2.IMREAD_COLOR), meta,
                                      read_p2(calib) if osp.isfile(calib) else None))
        try:
            report = onnx_export.verify_onnx(model, args.out, inputs, args.tolerance)
        except AssertionError as e:  # a finding, not a user error: exit status 1
            print(f'export_onnx: {e}', file=sys.stderr)
            return 1
        errs, det = report['branches'], report['detections']
        print('onnxruntime vs PyTorch, max relative error per branch: ' +
              ', '.join(f'{k} {v:.2e}' for k, v in errs.items()) +
              f' (all <= {args.tolerance:g}, {len(inputs)} inputs); detections (score >= '
              f'{meta["score_thr"]:g}): max |diff| ' +
              ', '.join(f'{k} {v:.1e}' for k, v in det.items() if k != 'missing') +
              f', {det["missing"]} unmatched')
        result['errors'] = errs
        result['detection_errors'] = det
        if args.int8:
            with_calib = all(osp.isfile(kitti_sibling(p, 'calib', '.txt'))
                             for p in verify_images)
            report = int8.measure_agreement(args.out, int8_path, verify_images,
                                            detections=with_calib)
            print(f'int8 vs float onnxruntime on {len(verify_images)} frame(s)'
                  + ('' if with_calib else ' (no ../calib/<id>.txt: raw maps only)') + ':\n'
                  + int8.format_agreement(report))
            result['agreement'] = report
            bad = int8.check_agreement(report)
            if bad:
                print(f'export_onnx: {int8_path} drifts from the float model beyond '
                      f'int8.AGREEMENT_BOUNDS: {"; ".join(bad)}', file=sys.stderr)
                return 1
            print('int8 within int8.AGREEMENT_BOUNDS')
    return result
