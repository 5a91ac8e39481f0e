"""Run an exported MonoDLE ONNX model on any camera with numpy, OpenCV and onnxruntime only.

Examples::

    python tools/deployment/ort_infer.py monodle_yolo8.onnx \\
        demo/kitti_mini/KITTI/training/image_2/000000.png --out-dir results/data
    python tools/deployment/ort_infer.py model.onnx data/KITTI/testing/image_2 --out-dir results
    python tools/deployment/ort_infer.py model.onnx drive.mp4 --intrinsics cam.yaml \\
        --jsonl dets.jsonl

Inputs, intrinsics, the virtual-camera normalisation and the outputs are those of
``tools/demo.py``: an image, folder, glob or video; ``--intrinsics`` (``--calib``) in any form
(``monodle_kitti/intrinsics.py``; default ``../calib/<id>.txt``); ``--out-dir``
(``--kitti-dir``) one ``<stem>.txt`` per frame with the KITTI result lines ``tools/test.py``
writes (``type -1 -1 alpha x1 y1 x2 y2 h w l x y z ry score``); ``--jsonl`` the same JSON-lines
records; ``--draw-dir`` the drawings of ``tools/demo.py --out-dir`` (projected 3D boxes + bird's-eye
view, boxes with score >= ``--draw-score-thr``; ``<stem>.png`` per image, ``<video stem>.mp4``
per video). Neither torch nor the OpenMMLab packages are imported: everything here comes from
the torch-free package ``monodle_kitti`` (numpy, OpenCV, onnxruntime): intrinsics, inputs,
drawing, errors and the pre-processing around the graph (``monodle_kitti/numpy_runtime.py``).
A missing or unreadable model, image, video or intrinsics ends with one line ``error: ...`` and
exit status 2 (``--debug``: the traceback).

The exported graph decodes (the box coder's top-k and geometry, as ``tools/test.py``); this
script pre-processes, feeds the graph the frame's P2, applies the score threshold and writes
the lines with ``monodle_kitti.kitti_io``.
"""
import argparse
import os
import os.path as osp
import time

from .. import frames as frames_mod
from .. import intrinsics as intrinsics_mod
from .. import kitti_io
from .. import numpy_runtime as rt
from ..mono3d_drawing import draw_mono3d_result


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('model', help='.onnx file written by tools/deployment/export_onnx.py')
    parser.add_argument('img', help='image, folder of images, glob pattern (quoted) or video')
    parser.add_argument('--intrinsics', '--calib', nargs='+', metavar='SPEC',
                        help='KITTI calib file or folder, fx fy cx cy, 9 numbers of K, a JSON or '
                        'OpenCV YAML file; default: ../calib/<stem>.txt next to image_2/')
    parser.add_argument('--out-dir', '--kitti-dir', dest='out_dir',
                        help='folder for the KITTI result lines <stem>.txt')
    parser.add_argument('--jsonl', help='JSON-lines file, one record per frame')
    parser.add_argument('--draw-dir',
                        help="folder for the drawings (tools/demo.py --out-dir's: PNG per image, "
                        'MP4 per video)')
    parser.add_argument('--draw-score-thr', type=float,
                        help='score threshold of the drawn boxes (default: the model\'s '
                        'test_cfg.score_thr, as tools/demo.py); the files hold every detection')
    parser.add_argument('--no-normalize-camera', action='store_true',
                        help='no virtual-camera normalisation (pad / crop to the training '
                        'focal length)')
    parser.add_argument('--threads', type=int, default=0,
                        help='onnxruntime intra-op threads (0: onnxruntime default)')
    parser.add_argument('--score-thr', type=float,
                        help='heatmap-score threshold on the graph\'s decoded peaks (default: '
                        'the exported test_cfg.score_thr)')
    args = parser.parse_args(argv)
    if not args.out_dir and not args.jsonl and not args.draw_dir:
        parser.error('give --out-dir (KITTI result lines), --jsonl and / or --draw-dir')
    return args


def main(argv=None) -> dict:
    """Returns ``{frame name: [result lines]}``."""
    args = parse_args(argv)
    import json

    import cv2
    import onnxruntime as ort

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
    meta = rt.parse_meta(props['monodle'], args.model)
    score_thr = meta['score_thr'] if args.score_thr is None else args.score_thr
    draw_thr = score_thr if args.draw_score_thr is None else args.draw_score_thr
    intr = intrinsics_mod.Intrinsics(args.intrinsics)
    sources = frames_mod.list_sources(args.img)
    if args.out_dir:
        os.makedirs(args.out_dir, exist_ok=True)
    jsonl = open(args.jsonl, 'w') if args.jsonl else None
    drawings = frames_mod.DrawingWriter(args.draw_dir) if args.draw_dir else None
    results, warned = {}, set()
    try:
        for frame in frames_mod.iter_frames(sources):
            img = frame.img if frame.img is not None else cv2.imread(frame.path,
                                                                     cv2.IMREAD_COLOR)
            if img is None:
                raise OSError(f'{frame.path}: image could not be read or decoded')
            raw_img = img
            cam2img, where = intr(*frame.lookup)
            problems = intrinsics_mod.p2_problems(cam2img, img.shape[:2], where, frame.path)
            if problems:  # NaN coordinates written with exit 0 otherwise
                raise ValueError(problems[0])
            hw = img.shape[:2]
            for msg in intrinsics_mod.camera_warnings(cam2img, hw[::-1], meta['input_size'],
                                                      where):
                if msg.split(':')[-1] not in warned:
                    warned.add(msg.split(':')[-1])
                    print(f'warning: {msg}')
            if args.no_normalize_camera:
                p_in, (dx, dy), ratio = cam2img, (0, 0), 1.0
            else:  # the virtual camera: the training focal length at the network input
                img, p_in, (dx, dy), ratio = intrinsics_mod.virtual_camera(img, cam2img)
            start = time.perf_counter()
            blob, affine = rt.preprocess(img, meta)
            feeds = rt.graph_feeds(meta, blob, [p_in], [img.shape[:2]], [affine])
            det = rt.select_detections(rt.run_graph(sess, meta, feeds), score_thr)
            det['bboxes_2d'][:, 0::2] -= dx  # 2D boxes back to the real image
            det['bboxes_2d'][:, 1::2] -= dy
            ms = (time.perf_counter() - start) * 1e3
            lines = kitti_io.format_kitti_lines(kitti_io.detections_to_kitti_anno(
                det['bboxes_3d'], det['scores_3d'], det['labels_3d'], det['bboxes_2d'],
                det['alphas'], meta['class_names'], frame.name))
            if args.out_dir:
                with open(osp.join(args.out_dir, f'{frame.name}.txt'), 'w') as f:
                    f.write('\n'.join(lines) + ('\n' if lines else ''))
            if jsonl is not None:
                jsonl.write(json.dumps(frames_mod.prediction_record(
                    frame, cam2img, det['bboxes_3d'], det['scores_3d'], det['labels_3d'],
                    det['bboxes_2d'], meta['class_names'], ratio, (dx, dy))) + '\n')
            if drawings is not None:  # tools/demo.py's drawing, on the real image and camera
                keep = det['scores_3d'] >= draw_thr
                drawings.write(frame, draw_mono3d_result(
                    raw_img, cam2img, det['bboxes_3d'][keep], det['labels_3d'][keep],
                    det['scores_3d'][keep], title=frame.name))
            print(f'{frame.name}: {len(lines)} objects, {ms:.0f} ms')
            results[frame.name] = lines
            frame.img = None  # a video frame's pixels are not kept
    finally:
        if jsonl is not None:
            jsonl.close()
        if drawings is not None:
            drawings.close()
    return results

