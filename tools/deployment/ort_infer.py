#!/usr/bin/env python
"""Run an exported MonoDLE ONNX model on KITTI images with numpy, OpenCV and onnxruntime only.

Examples::

    python tools/deployment/ort_infer.py monodle_yolo8.onnx \\
        demo/kitti_mini/KITTI/training/image_2/000000.png --out-dir results/data
    python tools/deployment/ort_infer.py model.onnx data/KITTI/testing/image_2 --out-dir results

Writes one ``<image id>.txt`` per image with the same KITTI result lines ``tools/test.py``
writes (``type -1 -1 alpha x1 y1 x2 y2 h w l x y z ry score``), and prints a summary line per
image. The calibration is read from the KITTI sibling folder (``../calib/<id>.txt``) unless
``--calib`` names a file or a folder. Neither torch nor the OpenMMLab packages are imported:
image listing, calibration lookup, pre- and post-processing are
``monodle_plugin/deployment/numpy_runtime.py``, loaded as a plain file (copy it next to this
script on a machine without the package). A missing or unreadable model, image or
calibration ends with one line ``error: ...`` and exit status 2 (``--debug``: the traceback):
``monodle_kitti/cli.py`` (standard library only) is loaded as a plain file too (copy it
next to this script as well; without it errors keep Python's traceback).
"""
import argparse
import importlib.util
import os
import os.path as osp
import time


def _load_plain(package: str, relpath: str, name: str):
    """``<package>/<relpath>`` as a plain module, without importing the package (the
    ``__init__`` of monodle_plugin imports torch); None if not found. Looked up next to this
    script, in the checkout, then where ``package`` is installed."""
    here = osp.dirname(osp.abspath(__file__))
    candidates = [osp.join(here, osp.basename(relpath)),
                  osp.join(here, '..', '..', package, relpath)]
    spec = importlib.util.find_spec(package)  # locates, does not import
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            candidates.append(osp.join(loc, relpath))
    for path in candidates:
        if osp.isfile(path):
            mod_spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(mod_spec)
            mod_spec.loader.exec_module(module)
            return module
    return None


def load_runtime():
    """numpy_runtime.py without importing the monodle_plugin package (no torch needed)."""
    module = _load_plain('monodle_plugin', 'deployment/numpy_runtime.py',
                         'monodle_numpy_runtime')
    if module is None:
        raise FileNotFoundError('numpy_runtime.py not found: copy monodle_plugin/deployment/'
                                f'numpy_runtime.py next to {osp.abspath(__file__)}')
    return module


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('model', help='.onnx file written by tools/deployment/export_onnx.py')
    parser.add_argument('img', help='an image file or a folder of images (KITTI image_2)')
    parser.add_argument('--calib', help='calibration file (for all images) or folder of '
                        '<id>.txt (default: ../calib/<id>.txt next to image_2/)')
    parser.add_argument('--out-dir', required=True, help='folder for the <id>.txt result files')
    parser.add_argument('--threads', type=int, default=0,
                        help='onnxruntime intra-op threads (0: onnxruntime default)')
    parser.add_argument('--score-thr', type=float,
                        help='override the exported score threshold')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    """Returns ``{image id: [result lines]}``."""
    args = parse_args(argv)
    import cv2
    import onnxruntime as ort
    rt = load_runtime()

    if not osp.isfile(args.model):
        raise FileNotFoundError(f'ONNX model not found: {args.model}')
    opts = ort.SessionOptions()
    if args.threads:
        opts.intra_op_num_threads = args.threads
    try:
        sess = ort.InferenceSession(args.model, sess_options=opts,
                                    providers=['CPUExecutionProvider'])
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types
        raise ValueError(f'{args.model}: onnxruntime {ort.__version__} cannot load it '
                         f'({str(e).strip().splitlines()[-1]})') from e
    props = sess.get_modelmeta().custom_metadata_map
    if 'monodle' not in props:
        raise KeyError(f'{args.model}: no "monodle" metadata; export it with '
                       'tools/deployment/export_onnx.py')
    meta = rt.parse_meta(props['monodle'])
    if args.score_thr is not None:
        meta['score_thr'] = args.score_thr
    os.makedirs(args.out_dir, exist_ok=True)
    results = {}
    for img_path in rt.list_images(args.img):
        stem = osp.splitext(osp.basename(img_path))[0]
        img = cv2.imread(img_path, cv2.IMREAD_COLOR)
        if img is None:
            raise OSError(f'{img_path}: image could not be read or decoded')
        calib_path = rt.calib_path_for(img_path, args.calib)
        cam2img = rt.read_p2(calib_path)
        problems = rt.p2_problems(cam2img, img.shape[:2], calib_path, img_path)
        if problems:  # NaN coordinates written with exit 0 otherwise
            raise ValueError(problems[0])
        start = time.perf_counter()
        blob, affine = rt.preprocess(img, meta)
        outs = dict(zip(meta['outputs'], sess.run(meta['outputs'], {'img': blob})))
        det = rt.decode(outs, meta, img.shape[:2], cam2img, affine)
        ms = (time.perf_counter() - start) * 1e3
        lines = rt.format_result_lines(det, meta['class_names'])
        with open(osp.join(args.out_dir, f'{stem}.txt'), 'w') as f:
            f.write('\n'.join(lines) + ('\n' if lines else ''))
        print(f'{stem}: {len(lines)} objects, {ms:.0f} ms')
        results[stem] = lines
    return results


if __name__ == '__main__':
    # monodle_kitti/cli.py imports only the standard library (monodle_plugin.utils.cli is the
    # same module, but importing that name runs monodle_plugin's __init__: torch, mmdet3d)
    cli = _load_plain('monodle_kitti', 'cli.py', 'monodle_cli')
    if cli is None:  # copied without cli.py: plain Python errors
        main()
    else:
        cli.run_cli(main)
