"""MonoDLE inference outside the training stack: numpy + OpenCV around the exported graph.

This module imports only numpy and OpenCV, so a deployment machine runs an exported ONNX model
with ``numpy``, ``opencv-python`` and ``onnxruntime`` alone (``tools/deployment/ort_infer.py``
loads this file directly, without importing the ``monodle_plugin`` package; :func:`ort_session`
imports onnxruntime when called). The exported graph holds the whole detector, decoding
included (``onnx_export.py``: the box coder's own top-k and geometry); what stays here is what
surrounds it:

* :func:`preprocess` = ``LoadKittiMonoImage`` + ``MonoDLEAffineAug(test_mode=True)`` +
  ``Det3DDataPreprocessor`` (whole-image affine warp with PIL's pixel-centre convention,
  channel swap, mean / std), tested equal to the PyTorch pipeline;
* :func:`graph_feeds` / :func:`run_graph`: the graph's inputs (image, P2, raw size or inverse
  affine) and its outputs by name;
* :func:`select_detections`: the score threshold, outside the graph so that one file serves
  any threshold. The KITTI result lines are ``monodle_kitti.kitti_io``'s
  (``detections_to_kitti_anno`` + ``format_kitti_lines``), as ``tools/test.py`` writes them.

The pre-processing parameters travel inside the ONNX file (metadata key ``monodle``, a JSON
dict written by ``tools/deployment/export_onnx.py``; see :data:`META_KEYS`).
"""
from __future__ import annotations

import json
import os
import os.path as osp
from typing import Sequence

import cv2
import numpy as np

from .kitti_io import kitti_sibling, read_calib  # kitti_sibling: re-exported for the apis

#: Keys of the ``monodle`` metadata JSON stored in the ONNX file.
META_KEYS = ('input_size', 'mean', 'std', 'bgr_to_rgb', 'class_names', 'topk', 'score_thr',
             'decode_mode', 'inputs', 'detections', 'outputs')
#: The graph's third input by decode mode: 'official' scales by raw size / feature size
#: (``ori_shape`` (B, 2) int64, raw H, W), 'affine' inverts the test warp (``inv_affine_mat``
#: (B, 3, 3) float64, network-input pixels -> raw-image pixels).
DECODE_INPUTS = {'official': 'ori_shape', 'affine': 'inv_affine_mat'}
#: The graph's decoded outputs: the K = ``topk`` peaks of each image, best heatmap score first:
#: ``bboxes_3d`` (B, K, 7) float32 ``x, y, z`` bottom centre (camera frame of the raw image,
#: metres), ``l, h, w`` metres, ``ry`` radians; ``scores_3d`` (B, K) heatmap score x
#: exp(-depth log-variance); ``labels_3d`` (B, K) int64; ``bboxes_2d`` (B, K, 4) x1 y1 x2 y2
#: raw-image pixels; ``alphas`` (B, K) observation angle, radians; ``heatmap_scores`` (B, K),
#: the score the threshold applies to; ``peaks`` (B, K, 2) float32 feature cell (x, y).
DETECTION_NAMES = ('bboxes_3d', 'scores_3d', 'labels_3d', 'bboxes_2d', 'alphas',
                   'heatmap_scores', 'peaks')
#: The head's seven raw branch maps, output after the detections (stride 4, pre-activation).
OUTPUT_NAMES = ('heatmap', 'offset_2d', 'size_2d', 'depth', 'offset_3d', 'size_3d', 'heading')


#: P2 of KITTI's frame 000000 and its image (H, W): the camera of graph inputs where a frame has
#: no calibration of its own (the export trace, ``--verify``'s random image, int8 calibration
#: frames without ``../calib``; the raw maps do not depend on it).
EXAMPLE_P2 = np.array([[721.5377, 0.0, 609.5593, 44.85728], [0.0, 721.5377, 172.854, 0.2163791],
                       [0.0, 0.0, 1.0, 0.002745884], [0.0, 0.0, 0.0, 1.0]])
EXAMPLE_HW = (375, 1242)

#: Image file extensions listed by :func:`list_images`.
IMAGE_EXTS = ('.png', '.jpg', '.jpeg', '.bmp')


def list_images(path: str) -> list[str]:
    """Sorted image files of ``path`` (a file or a folder); a clear error when there is none.
    (Here, not in the torch side, so that ``tools/deployment/ort_infer.py`` and
    ``monodle_plugin.apis`` share one copy.)"""
    if osp.isfile(path):
        return [path]
    if osp.isdir(path):
        files = sorted(osp.join(path, f) for f in os.listdir(path)
                       if f.lower().endswith(IMAGE_EXTS))
        if not files:
            raise FileNotFoundError(f'{path}: folder holds no image ({", ".join(IMAGE_EXTS)})')
        return files
    raise FileNotFoundError(f'image file or folder not found: {path}')


def calib_path_for(img_path: str, calib: str | None = None) -> str:
    """The calibration file of ``img_path``: ``calib`` (a file for every image, or a folder of
    ``<stem>.txt``), else ``../calib/<stem>.txt`` next to ``image_2/``; a clear error if none."""
    stem = osp.splitext(osp.basename(img_path))[0]
    if calib is None:
        path = kitti_sibling(img_path, 'calib', '.txt')
        hint = 'give --calib FILE_OR_FOLDER'
    elif osp.isdir(calib):
        path, hint = osp.join(calib, stem + '.txt'), f'--calib folder {calib}'
    else:
        path, hint = calib, '--calib'
    if not osp.isfile(path):
        raise FileNotFoundError(f'{img_path}: calibration {path} not found ({hint})')
    return path


def ort_session(onnx_path: str, threads: int | None = None):
    """An onnxruntime CPU session (``threads``: intra-op threads, None = onnxruntime's; one
    inter-op thread). onnxruntime is imported here, on first use."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    return ort.InferenceSession(onnx_path, sess_options=opts, providers=['CPUExecutionProvider'])


def parse_meta(text: str, source: str = 'the ONNX model') -> dict:
    """The ``monodle`` metadata JSON of an exported model (``source``: the file, named in the
    error); a missing key (e.g. a file exported before the decoding moved into the graph) is a
    clear error."""
    meta = json.loads(text)
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        raise KeyError(f'{source}: ONNX metadata "monodle" lacks {missing}: re-export the model '
                       'with tools/deployment/export_onnx.py')
    return meta


def read_p2(calib_path: str) -> np.ndarray:
    """P2 of a KITTI calibration file as a (4, 4) float64 matrix (last row 0 0 0 1): the one
    calib reader, :func:`monodle_kitti.kitti_io.read_calib` (torch-free)."""
    return read_calib(calib_path)['cam2img']


def whole_image_affine(img_w: int, img_h: int, out_w: int, out_h: int) -> np.ndarray:
    """(3, 3) raw-image -> network-input matrix of MonoDLE's test-time warp (whole image).

    Same float32 three-point construction and ``cv2.getAffineTransform`` as
    ``monodle_affine_matrix(center=(W/2, H/2), crop_size=(W, H), output_size)``.
    """
    def three_points(origin: np.ndarray, width: float) -> np.ndarray:
        pts = np.zeros((3, 2), dtype=np.float32)
        pts[0] = origin
        pts[1] = np.asarray(origin, dtype=np.float64) + np.array([0.0, -0.5 * width])
        d = pts[0] - pts[1]
        pts[2] = pts[1] + np.array([-d[1], d[0]], dtype=np.float32)
        return pts

    center = np.array([img_w, img_h], dtype=np.float64) / 2
    src = three_points(center, float(img_w))
    dst = three_points(np.array([out_w * 0.5, out_h * 0.5]), float(out_w))
    mat = np.eye(3)
    mat[:2] = cv2.getAffineTransform(src, dst)
    return mat


def preprocess(img_bgr: np.ndarray, meta: dict) -> tuple[np.ndarray, np.ndarray]:
    """BGR uint8 image (H, W, 3) -> network input (1, 3, h, w) float32 and the affine matrix.

    Args:
        img_bgr: the raw KITTI image as ``cv2.imread`` returns it.
        meta: the exported model's metadata (``input_size`` (w, h), ``mean``, ``std``,
            ``bgr_to_rgb``).

    Returns:
        ``(blob, affine_mat)``: the input tensor and the (3, 3) raw -> input pixel matrix.
    """
    out_w, out_h = (int(v) for v in meta['input_size'])
    height, width = img_bgr.shape[:2]
    mat = whole_image_affine(width, height, out_w, out_h)
    half = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    half_inv = np.array([[1.0, 0.0, -0.5], [0.0, 1.0, -0.5], [0.0, 0.0, 1.0]])
    mat_cv = half_inv @ mat @ half  # PIL's pixel-centre convention, as MonoDLEAffineAug
    img = cv2.warpAffine(img_bgr, mat_cv[:2], (out_w, out_h), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if meta['bgr_to_rgb']:
        img = img[..., ::-1]
    img = (img.astype(np.float32) - np.asarray(meta['mean'], np.float32)) / np.asarray(
        meta['std'], np.float32)
    return np.ascontiguousarray(img.transpose(2, 0, 1)[None]), mat


def graph_feeds(meta: dict, img: np.ndarray, cam2img: Sequence[np.ndarray],
                ori_shape: Sequence[Sequence[int]],
                affine: Sequence[np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """The inputs of the exported graph (``meta['inputs']``) for a batch of B images.

    Args:
        meta: the exported model's metadata.
        img: (B, 3, h, w) float32 network input (:func:`preprocess`).
        cam2img: per image its P2, (3, 4) or (4, 4), of the image given to :func:`preprocess`.
        ori_shape: per image that image's (H, W) pixels.
        affine: per image :func:`preprocess`'s (3, 3) image -> network-input matrix; needed
            when the model decodes with ``decode_mode='affine'`` (the graph takes its inverse,
            ``np.linalg.inv`` as ``MonoDLEAffineAug`` computes ``inv_affine_mat``).
    """
    p2 = np.zeros((len(cam2img), 4, 4))
    for i, p in enumerate(cam2img):
        p = np.asarray(p, np.float64)
        p2[i, :3] = p[:3]
        p2[i, 3] = p[3] if p.shape[0] == 4 else (0.0, 0.0, 0.0, 1.0)
    values = dict(img=np.ascontiguousarray(img, np.float32), cam2img=p2,
                  ori_shape=np.asarray([tuple(hw)[:2] for hw in ori_shape], np.int64))
    if 'inv_affine_mat' in meta['inputs']:
        if affine is None:
            raise ValueError("the model decodes with decode_mode='affine': give the affine "
                             'matrix of preprocess()')
        values['inv_affine_mat'] = np.stack([np.linalg.inv(np.asarray(a, np.float64))
                                             for a in affine])
    return {name: values[name] for name in meta['inputs']}


def run_graph(sess, meta: dict, feeds: dict[str, np.ndarray],
              raw_maps: bool = False) -> dict[str, np.ndarray]:
    """Run the exported graph: ``{name: array}`` of its detections (:data:`DETECTION_NAMES`),
    plus the raw maps (:data:`OUTPUT_NAMES`) with ``raw_maps``."""
    names = list(meta['detections']) + (list(meta['outputs']) if raw_maps else [])
    return dict(zip(names, sess.run(names, feeds)))


def frame_feeds(img_bgr: np.ndarray, meta: dict, cam2img: np.ndarray | None = None
                ) -> dict[str, np.ndarray]:
    """Graph inputs of one raw frame: :func:`preprocess` + :func:`graph_feeds` with its P2
    (None: :data:`EXAMPLE_P2`, for uses that read only the raw maps)."""
    blob, affine = preprocess(img_bgr, meta)
    p2 = EXAMPLE_P2 if cam2img is None else cam2img
    return graph_feeds(meta, blob, [p2], [img_bgr.shape[:2]], [affine])


def select_detections(outputs: dict[str, np.ndarray], score_thr: float,
                      image: int = 0) -> dict[str, np.ndarray]:
    """Image ``image``'s detections whose heatmap score is ``>= score_thr`` (the decoded
    graph outputs keep all K peaks; ``tools/test.py`` applies ``test_cfg.score_thr`` the same
    way), best first: the :data:`DETECTION_NAMES` arrays of the kept rows."""
    keep = np.asarray(outputs['heatmap_scores'][image]) >= score_thr
    return {name: np.asarray(outputs[name][image])[keep] for name in DETECTION_NAMES}
