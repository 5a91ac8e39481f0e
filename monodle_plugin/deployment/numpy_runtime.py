"""MonoDLE inference outside the training stack: numpy + OpenCV pre/post-processing.

This module imports only numpy and OpenCV, so a deployment machine runs an exported ONNX model
with ``numpy``, ``opencv-python`` and ``onnxruntime`` alone (``tools/deployment/ort_infer.py``
loads this file directly, without importing the ``monodle_plugin`` package; :func:`ort_session`
imports onnxruntime when called). It repeats, in
numpy, three steps whose reference lives in the PyTorch package; tests compare them on real
KITTI frames:

* :func:`preprocess` = ``LoadKittiMonoImage`` + ``MonoDLEAffineAug(test_mode=True)`` +
  ``Det3DDataPreprocessor`` (whole-image affine warp with PIL's pixel-centre convention,
  channel swap, mean / std);
* :func:`decode` = ``CenterNet3DHead.predict_by_feat`` (sigmoid heatmap, 3x3 max-pool NMS,
  MonoDLE's two-stage top-k, ``score = heatmap x exp(-log_variance)``, depth
  ``1 / (sigmoid(x) + 1e-6) - 1``, back-projection with P2, multi-bin heading); both decode modes;
* :func:`format_result_lines` = the KITTI result lines ``tools/test.py`` writes
  (``KittiAP40Metric`` + ``format_kitti_lines``).

The decoding parameters travel inside the ONNX file (metadata key ``monodle``, a JSON dict
written by ``tools/deployment/export_onnx.py``; see :data:`META_KEYS`).
"""
from __future__ import annotations

import json
import math
import os
import os.path as osp

import cv2
import numpy as np

#: Keys of the ``monodle`` metadata JSON stored in the ONNX file.
META_KEYS = ('input_size', 'mean', 'std', 'bgr_to_rgb', 'class_names', 'mean_size',
             'num_heading_bins', 'topk', 'score_thr', 'nms_kernel', 'decode_mode', 'down_ratio',
             'outputs')
#: Output order of the exported graph (the head's seven raw branch maps).
OUTPUT_NAMES = ('heatmap', 'offset_2d', 'size_2d', 'depth', 'offset_3d', 'size_3d', 'heading')


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


def kitti_sibling(img_path: str, folder: str, ext: str) -> str:
    """``.../<folder>/<stem><ext>`` next to ``.../image_2/<stem>.png`` (KITTI layout)."""
    stem = osp.splitext(osp.basename(img_path))[0]
    return osp.join(osp.dirname(osp.dirname(osp.abspath(img_path))), folder, stem + ext)


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


def parse_meta(text: str) -> dict:
    """The ``monodle`` metadata JSON of an exported model; a missing key is a clear error."""
    meta = json.loads(text)
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        raise KeyError(f'ONNX metadata "monodle" lacks {missing}: re-export the model with '
                       'tools/deployment/export_onnx.py')
    return meta


def read_p2(calib_path: str) -> np.ndarray:
    """P2 of a KITTI calibration file as a (4, 4) float64 matrix (last row 0 0 0 1): the one
    calib reader, :func:`monodle_kitti.kitti_io.read_calib` (torch-free)."""
    from monodle_kitti.kitti_io import read_calib
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


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _max_pool_same(x: np.ndarray, k: int) -> np.ndarray:
    """k x k max-pool, stride 1, padding (k - 1) // 2 (padded with -inf) over (..., H, W)."""
    p = (k - 1) // 2
    h, w = x.shape[-2:]
    padded = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(p, p), (p, p)], constant_values=-np.inf)
    out = np.full_like(x, -np.inf)
    for dy in range(k):
        for dx in range(k):
            out = np.maximum(out, padded[..., dy:dy + h, dx:dx + w])
    return out


def _topk(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Largest k along the last axis, sorted descending (torch.topk's order)."""
    idx = np.argsort(-values, axis=-1, kind='stable')[..., :k]
    return np.take_along_axis(values, idx, -1), idx


def decode(outputs: dict, meta: dict, img_shape: tuple[int, int], cam2img: np.ndarray,
           affine_mat: np.ndarray | None = None) -> dict:
    """Raw branch maps of one image -> detections, as ``CenterNet3DHead.predict_by_feat``.

    Args:
        outputs: branch name -> (1, C, h, w) array (the ONNX outputs, :data:`OUTPUT_NAMES`).
        meta: the exported model's metadata (decode parameters).
        img_shape: raw image (H, W) in pixels.
        cam2img: (4, 4) or (3, 4) P2 of the raw image.
        affine_mat: (3, 3) raw -> input matrix; needed for ``decode_mode='affine'``.

    Returns:
        dict of numpy arrays over the N kept detections, best first: ``bboxes_3d`` (N, 7)
        ``x, y, z`` bottom centre (camera frame, metres), ``l, h, w`` (metres), ``ry``
        (radians); ``scores`` (N,); ``labels`` (N,) int; ``alphas`` (N,) radians; ``bboxes``
        (N, 4) 2D boxes x1 y1 x2 y2 in raw-image pixels.
    """
    heat = np.clip(_sigmoid(outputs['heatmap'][0].astype(np.float32)), 1e-4, 1 - 1e-4)
    heat = heat * (_max_pool_same(heat, int(meta['nms_kernel'])) == heat)
    c, fh, fw = heat.shape
    k = min(int(meta['topk']), fh * fw)
    cls_scores, cls_inds = _topk(heat.reshape(c, -1), k)
    scores, ind = _topk(cls_scores.reshape(-1), k)
    cls_ids = ind // k
    inds = cls_inds.reshape(-1)[ind]
    ys = (inds // fw).astype(np.float32)
    xs = (inds % fw).astype(np.float32)

    def gather(name: str) -> np.ndarray:  # (C, h, w) -> (k, C) at the picked pixels
        m = outputs[name][0].astype(np.float32)
        return m.reshape(m.shape[0], -1)[:, inds].T

    g = {name: gather(name) for name in OUTPUT_NAMES[1:]}
    keep = scores >= float(meta['score_thr'])
    cls = cls_ids[keep]
    f64 = np.float64
    x2d = (xs + g['offset_2d'][:, 0])[keep].astype(f64)
    y2d = (ys + g['offset_2d'][:, 1])[keep].astype(f64)
    w2d, h2d = g['size_2d'][keep, 0].astype(f64), g['size_2d'][keep, 1].astype(f64)
    x3d = (xs + g['offset_3d'][:, 0])[keep].astype(f64)
    y3d = (ys + g['offset_3d'][:, 1])[keep].astype(f64)
    corners = np.stack([x2d - w2d / 2, y2d - h2d / 2, x2d + w2d / 2, y2d + h2d / 2], 1)
    if meta['decode_mode'] == 'official':
        raw_h, raw_w = img_shape
        rx, ry = raw_w / fw, raw_h / fh
        bboxes = corners * np.array([rx, ry, rx, ry])
        u, v = x3d * rx, y3d * ry
    else:
        if affine_mat is None:
            raise ValueError("decode_mode='affine' needs the affine matrix of preprocess()")
        inv = np.linalg.inv(affine_mat)
        s = float(meta['down_ratio'])

        def warp(px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return (inv[0, 0] * px + inv[0, 1] * py + inv[0, 2],
                    inv[1, 0] * px + inv[1, 1] * py + inv[1, 2])

        ax, ay = warp(corners[:, 0] * s, corners[:, 1] * s)
        bx, by = warp(corners[:, 2] * s, corners[:, 3] * s)
        bboxes = np.stack([np.minimum(ax, bx), np.minimum(ay, by),
                           np.maximum(ax, bx), np.maximum(ay, by)], 1)
        u, v = warp(x3d * s, y3d * s)
    p2 = np.asarray(cam2img, np.float64)
    fu, fv, cu, cv = p2[0, 0], p2[1, 1], p2[0, 2], p2[1, 2]
    tx, ty = p2[0, 3] / (-fu), p2[1, 3] / (-fv)
    depth_logit = g['depth'][:, 0]
    depth = 1.0 / (_sigmoid(depth_logit) + 1e-6) - 1.0
    sigma = np.exp(-g['depth'][:, 1])
    z = depth[keep].astype(f64)
    mean_size = np.asarray(meta['mean_size'], np.float32)
    dims = (g['size_3d'][keep] + mean_size[cls]).astype(f64)  # h, w, l
    loc_x = (u - cu) * z / fu + tx
    loc_y = (v - cv) * z / fv + ty + dims[:, 0] / 2
    nb = int(meta['num_heading_bins'])
    heading = g['heading'][keep]
    bin_id = heading[:, :nb].argmax(1)
    res = np.take_along_axis(heading[:, nb:], bin_id[:, None], 1)[:, 0].astype(f64)
    alpha = bin_id.astype(f64) * (2 * math.pi / nb) + res
    alpha = np.where(alpha > math.pi, alpha - 2 * math.pi, alpha)
    rot_y = alpha + np.arctan2(u - cu, fu)
    rot_y = np.where(rot_y > math.pi, rot_y - 2 * math.pi, rot_y)
    rot_y = np.where(rot_y < -math.pi, rot_y + 2 * math.pi, rot_y)
    score = (scores[keep] * sigma[keep]).astype(np.float32)
    boxes = np.stack([loc_x, loc_y, z, dims[:, 2], dims[:, 0], dims[:, 1], rot_y], 1)
    return dict(bboxes_3d=boxes.astype(np.float32), scores=score, labels=cls.astype(np.int64),
                alphas=alpha.astype(np.float32), bboxes=bboxes.astype(np.float32))


def format_result_lines(det: dict, class_names) -> list[str]:
    """KITTI result lines (test-server format) of :func:`decode`'s output, as tools/test.py.

    ``type -1 -1 alpha x1 y1 x2 y2 h w l x y z ry score``; alpha wrapped to [-pi, pi] like
    ``KittiAP40Metric``; 4 decimals, score 6.
    """
    lines = []
    for i in range(len(det['scores'])):
        b = det['bboxes'][i].astype(np.float64)
        x, y, z, ln, h, w, ry = det['bboxes_3d'][i].astype(np.float64)
        alpha = float(det['alphas'][i])
        alpha = math.atan2(math.sin(alpha), math.cos(alpha))
        lines.append(
            f'{class_names[int(det["labels"][i])]} -1 -1 {alpha:.4f} '
            f'{b[0]:.4f} {b[1]:.4f} {b[2]:.4f} {b[3]:.4f} '
            f'{h:.4f} {w:.4f} {ln:.4f} {x:.4f} {y:.4f} {z:.4f} {ry:.4f} '
            f'{float(det["scores"][i]):.6f}')
    return lines
