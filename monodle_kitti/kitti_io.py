"""KITTI object files, one home: labels, calibrations, split files, result files, split folders.

Used by the dataset, the metric, ``tools/kitti_eval.py`` and every tool that reads a KITTI
layout. Every reader fails with one message naming the file (and line) and the problem:
:class:`KittiFormatError` (a ``ValueError``) for content, ``FileNotFoundError`` for a missing
file, never a silent wrong result.

Layout (MonoDLE's README)::

    data_root/ImageSets/{train,val,trainval,test}.txt      one 6-digit id per line
    data_root/training/{image_2/<id>.png, calib/<id>.txt, label_2/<id>.txt}
    data_root/testing/{image_2/<id>.png, calib/<id>.txt}   (no labels)

Label / result line (KITTI devkit ``readme.txt``; result files add the 16th ``score``)::

    type truncated occluded alpha x1 y1 x2 y2 h w l x y z ry [score]

One parser (:func:`parse_label_fields`) reads a line; two views are derived from it:

- :func:`read_label`: per-object dicts for the dataset (see :func:`parse_label_line`).
- :func:`read_kitti_file`: the devkit's column arrays for the evaluation (mmdet3d's
  ``get_label_anno`` layout): ``name`` (N,) str, ``truncated`` (N,), ``occluded`` (N,) int,
  ``alpha`` (N,), ``bbox`` (N, 4), ``dimensions`` (N, 3) **l, h, w**, ``location`` (N, 3),
  ``rotation_y`` (N,), ``score`` (N,) (zeros in label files without scores).

Conventions (those of MonoDLE, which the rest of the package follows):

- 2D boxes ``[x1, y1, x2, y2]`` in raw-image pixels, as written in the label file.
- 3D boxes ``[x, y, z, l, h, w, ry]``: bottom centre in the rectified camera frame (metres), the
  dimensions in mmdet3d's ``CameraInstance3DBoxes`` order (l, h, w; the label file stores h, w, l),
  ``ry`` in radians.
- Projection of a camera point through P2 divides by the point's own depth ``z`` (MonoDLE's
  ``Calibration.rect_to_img``), not by the third row of ``P2 @ X`` (which adds ``P2[2, 3]``, a few
  millimetres); decoding with ``x = (u - cu) * z / fu + tx`` inverts it exactly.
"""
import math
import os
import os.path as osp
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from .camera import pad_cam2img, project_to_image
from .classes import KITTI_CLASSES

#: Fields of a label line: 15, or 16 when a detection score follows (result files).
NUM_LABEL_FIELDS = (15, 16)
#: Names of the numeric fields of a line, in file order (error messages name them).
LABEL_FIELD_NAMES = ('truncated', 'occluded', 'alpha', 'x1', 'y1', 'x2', 'y2', 'h', 'w', 'l',
                     'x', 'y', 'z', 'ry', 'score')
#: Keys of a devkit annotation dict (:func:`read_kitti_file`).
ANNO_KEYS = ('name', 'truncated', 'occluded', 'alpha', 'bbox', 'dimensions', 'location',
             'rotation_y', 'score')
#: Split name -> KITTI sub-folder.
SPLIT_FOLDERS = {'train': 'training', 'val': 'training', 'trainval': 'training',
                 'test': 'testing'}


class KittiFormatError(ValueError):
    """A KITTI file that cannot be read as it should; the message names the file."""


# ---------------------------------------------------------------------- splits and folders
def split_folder(data_root: str, split: str) -> str:
    """``<data_root>/training`` or ``<data_root>/testing`` for a split name.

    Raises:
        ValueError: ``split`` is not one of :data:`SPLIT_FOLDERS`.
    """
    if split not in SPLIT_FOLDERS:
        raise ValueError(f'split must be one of {sorted(SPLIT_FOLDERS)}, got {split!r}')
    return osp.join(data_root, SPLIT_FOLDERS[split])


def split_file_path(data_root: str, split: str) -> str:
    """``<data_root>/ImageSets/<split>.txt``."""
    return osp.join(data_root, 'ImageSets', f'{split}.txt')


def read_split_file(path: str) -> List[str]:
    """Image ids (strings, e.g. ``'000015'``) listed one per line in a split file.

    Raises:
        FileNotFoundError: the file does not exist (the message names it).
        KittiFormatError: an id is not numeric or repeated (line named), or the file lists
            no id.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: split file not found (expected one KITTI id per '
                                f'line, e.g. data/KITTI/ImageSets/val.txt of this repository)')
    with open(path, encoding='utf-8-sig') as f:  # a UTF-8 BOM (Windows editors) is accepted
        lines = [(no, line.strip()) for no, line in enumerate(f, 1) if line.strip()]
    first_line: Dict[str, int] = {}
    for line_no, sample_id in lines:
        if not sample_id.isdigit():
            raise KittiFormatError(f'{path}: line {line_no}: {sample_id!r} is not a numeric '
                                   'KITTI id')
        if sample_id in first_line:
            raise KittiFormatError(
                f'{path}: line {line_no} repeats id {sample_id} (first on line '
                f'{first_line[sample_id]}): a repeated frame is drawn twice in training and '
                'counted twice in evaluation; list each id once')
        first_line[sample_id] = line_no
    if not lines:
        raise KittiFormatError(f'{path}: split file lists no image ids')
    return [sample_id for _, sample_id in lines]


def read_split(data_root: str, split: str) -> List[str]:
    """Ids of ``<data_root>/ImageSets/<split>.txt`` (see :func:`read_split_file`)."""
    return read_split_file(split_file_path(data_root, split))


# MonoDLE difficulty levels (``Object3d.get_obj_level``), computed on the raw 2D box.
LEVEL_DONTCARE, LEVEL_EASY, LEVEL_MODERATE, LEVEL_HARD, LEVEL_UNKNOWN = 0, 1, 2, 3, 4
# (min 2D height px, max truncation, max occlusion) of Easy, Moderate, Hard: KITTI's definition.
_LEVEL_LIMITS = ((LEVEL_EASY, 40.0, 0.15, 0.0), (LEVEL_MODERATE, 25.0, 0.30, 1.0),
                 (LEVEL_HARD, 25.0, 0.50, 2.0))


def monodle_difficulty(bbox: List[float], truncated: float, occluded: float) -> int:
    """MonoDLE's difficulty level of one object.

    Args:
        bbox: raw 2D box ``[x1, y1, x2, y2]`` (pixels); the height is ``y2 - y1 + 1``.
        truncated: truncation in [0, 1], -1 for DontCare / pseudo-labels.
        occluded: occlusion state 0..3, -1 when unknown.

    Returns:
        0 DontCare (``truncated == -1``), 1 Easy, 2 Moderate, 3 Hard, 4 UnKnown.
    """
    if truncated == -1:
        return LEVEL_DONTCARE
    height = float(bbox[3]) - float(bbox[1]) + 1
    for level, min_height, max_trunc, max_occ in _LEVEL_LIMITS:
        if height >= min_height and truncated <= max_trunc and occluded <= max_occ:
            return level
    return LEVEL_UNKNOWN


def kitti_sibling(img_path: str, folder: str, ext: str) -> str:
    """``.../<folder>/<stem><ext>`` next to ``.../image_2/<stem>.png`` (KITTI layout: the one
    place that finds a frame's calib / label / depth file from its image path)."""
    stem = osp.splitext(osp.basename(img_path))[0]
    return osp.join(osp.dirname(osp.dirname(osp.abspath(img_path))), folder, stem + ext)


def read_calib(calib_path: str) -> Dict[str, np.ndarray]:
    """Read a KITTI calibration file.

    Args:
        calib_path: ``calib/<id>.txt``; lines ``KEY: v1 v2 ...``.

    Returns:
        dict of float64 arrays: every key found, reshaped (P*: 3x4, R0_rect: 3x3, Tr_*: 3x4), plus
        ``cam2img``: P2 padded to 4x4 with the row ``[0, 0, 0, 1]``.

    Raises:
        FileNotFoundError: the file is missing.
        KittiFormatError: no ``P2`` line, or P2 is not 12 finite numbers.
    """
    if not osp.isfile(calib_path):
        raise FileNotFoundError(f'{calib_path}: calibration file not found')
    calib: Dict[str, np.ndarray] = {}
    with open(calib_path, encoding='utf-8-sig') as f:
        for line_no, line in enumerate(f, 1):
            if ':' not in line:
                continue
            key, values = line.split(':', 1)
            try:
                calib[key.strip()] = np.array(values.split(), dtype=np.float64)
            except ValueError:
                raise KittiFormatError(
                    f'{calib_path}:{line_no}: non-numeric value in calibration line '
                    f'{key.strip()!r}') from None
    if 'P2' not in calib:
        raise KittiFormatError(f'{calib_path}: calibration has no P2 line (keys: '
                               f'{sorted(calib)})')
    for key, shape in (('P0', (3, 4)), ('P1', (3, 4)), ('P2', (3, 4)), ('P3', (3, 4)),
                       ('R0_rect', (3, 3)), ('Tr_velo_to_cam', (3, 4)),
                       ('Tr_imu_to_velo', (3, 4))):
        if key not in calib:
            continue
        if calib[key].size != shape[0] * shape[1]:
            raise KittiFormatError(f'{calib_path}: {key} has {calib[key].size} values, '
                                   f'expected {shape[0] * shape[1]}')
        calib[key] = calib[key].reshape(shape)
    if not np.all(np.isfinite(calib['P2'])):
        raise KittiFormatError(f'{calib_path}: P2 contains NaN or inf')
    calib['cam2img'] = pad_cam2img(calib['P2'])
    return calib


def check_depth(name: str, z: float, where: str) -> None:
    """A labelled object must lie in front of the camera (``z > 0`` m; DontCare lines carry
    the placeholder -1000)."""
    if name != 'DontCare' and z <= 0:
        raise KittiFormatError(f'{where}: location z = {z} m <= 0 for a {name}: the object is '
                               'not in front of the camera (KITTI labels have z > 0); fix or '
                               'remove the line')


def check_dimensions(name: str, hwl, where: str) -> None:
    """Negative 3D dimensions are an error (DontCare lines carry -1 placeholders: allowed).

    Args:
        name: object class name.
        hwl: (h, w, l) metres as written in the label file.
        where: ``file:line`` for the message.
    """
    if name != 'DontCare' and min(hwl) < 0:
        raise KittiFormatError(f'{where}: negative 3D dimensions (h, w, l) = {tuple(hwl)} for a '
                               f'{name}; fix or remove the line')


def parse_label_fields(line: str, where: str) -> Tuple[str, List[float]]:
    """The one parser of a label / result line: class name and the 14 or 15 numbers.

    Args:
        line: ``name trunc occ alpha x1 y1 x2 y2 h w l x y z ry [score]``.
        where: ``file:line`` used in error messages.

    Returns:
        ``(name, values)``: ``values`` the numeric fields in file order (14, or 15 with score).

    Raises:
        KittiFormatError: wrong field count, unknown class name, non-numeric or non-finite
            field; the message starts with ``where``.
    """
    fields = line.split()
    if len(fields) not in NUM_LABEL_FIELDS:
        raise KittiFormatError(f'{where}: expected 15 or 16 fields (16 with a score), got '
                               f'{len(fields)} fields: {line.strip()!r}')
    name = fields[0]
    if name not in KITTI_CLASSES:
        raise KittiFormatError(f'{where}: unknown class name {name!r} (known: {KITTI_CLASSES})')
    try:
        values = [float(v) for v in fields[1:]]
    except ValueError:
        raise KittiFormatError(f'{where}: non-numeric field in label line: {line.strip()!r}') \
            from None
    bad = [LABEL_FIELD_NAMES[i] for i, v in enumerate(values) if not math.isfinite(v)]
    if bad:
        raise KittiFormatError(f'{where}: NaN or inf value of {", ".join(bad)}: '
                               f'{line.strip()!r}')
    return name, values


def _read_lines(path: str, what: str) -> List[Tuple[str, List[float]]]:
    """``parse_label_fields`` of every non-blank line of ``path``, in file order."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: {what} file not found')
    with open(path, encoding='utf-8-sig') as f:  # a UTF-8 BOM is not part of the class name
        return [parse_label_fields(line, f'{path}:{line_no}')
                for line_no, line in enumerate(f, 1) if line.strip()]


def parse_label_line(line: str, where: str) -> dict:
    """Parse one label line into the contract's instance fields (without labels/projection).

    Args:
        line: ``name trunc occ alpha x1 y1 x2 y2 h w l x y z ry [score]``.
        where: ``file:line`` used in error messages.

    Returns:
        dict with ``name``, ``truncated``, ``occluded``, ``alpha``, ``bbox`` [x1, y1, x2, y2],
        ``bbox_3d`` [x, y, z, l, h, w, ry], ``score`` (float or None), ``difficulty``, ``depth``.
    """
    return _instance(*parse_label_fields(line, where), where)


def _instance(name: str, values: List[float], where: str) -> dict:
    truncated, occluded, alpha = values[0], values[1], values[2]
    bbox = values[3:7]
    h, w, l_ = values[7:10]
    check_dimensions(name, (h, w, l_), where)  # training labels too, not only result files
    x, y, z = values[10:13]
    check_depth(name, z, where)
    ry = values[13]
    return dict(
        name=name,
        truncated=truncated,
        occluded=int(occluded),
        alpha=alpha,
        bbox=bbox,
        bbox_3d=[x, y, z, l_, h, w, ry],
        score=values[14] if len(values) == 15 else None,
        difficulty=monodle_difficulty(bbox, truncated, occluded),
        depth=z,
    )


def read_label(label_path: str, cam2img: Optional[np.ndarray] = None,
               class_to_label: Optional[Dict[str, int]] = None) -> List[dict]:
    """Read every line of a KITTI label file, in file order (DontCare included).

    Args:
        label_path: ``label_2/<id>.txt``. An empty file is a frame without objects.
        cam2img: P2 (3x4 or 4x4); when given, each instance gets ``center_2d``: the 3D centre
            ``(x, y - h / 2, z)`` projected through it (raw pixels, see the module docstring).
        class_to_label: name -> training label; other names get -1. When given, each instance
            gets ``bbox_label`` and ``bbox_label_3d``.

    Returns:
        list of instance dicts (see :func:`parse_label_line`).

    Raises:
        FileNotFoundError: the file is missing. KittiFormatError: a bad line (file:line named).
    """
    instances = [_instance(name, values, f'{label_path} (object {k})')
                 for k, (name, values) in enumerate(_read_lines(label_path, 'label'))]
    if cam2img is not None and instances:
        centers = np.array([[b[0], b[1] - b[4] / 2, b[2]] for b in
                            (ins['bbox_3d'] for ins in instances)])
        uv = project_to_image(centers, cam2img)
        for ins, c in zip(instances, uv):
            ins['center_2d'] = c.tolist()
    if class_to_label is not None:
        for ins in instances:
            label = class_to_label.get(ins['name'], -1)
            ins['bbox_label'] = label
            ins['bbox_label_3d'] = label
    return instances


def read_label_boxes(img_path: str) -> Optional[np.ndarray]:
    """Ground-truth boxes of a KITTI-layout image for drawing: (N, 7) float64 camera boxes
    (x, y, z of the bottom centre, l, h, w in metres, ry in radians; ``CameraInstance3DBoxes``
    order) of ``../label_2/<stem>.txt`` without DontCare, or None when the frame has no label
    file (a test image, a user's own picture)."""
    label_path = kitti_sibling(img_path, 'label_2', '.txt')
    if not osp.isfile(label_path):
        return None
    return np.array([ins['bbox_3d'] for ins in read_label(label_path)
                     if ins['name'] != 'DontCare'], dtype=np.float64).reshape(-1, 7)


# ---------------------------------------------------------------------- devkit column arrays
def empty_kitti_anno() -> Dict[str, np.ndarray]:
    """A devkit annotation dict with no objects."""
    return {
        'name': np.array([], dtype='<U16'),
        'truncated': np.zeros(0),
        'occluded': np.zeros(0, dtype=np.int64),
        'alpha': np.zeros(0),
        'bbox': np.zeros((0, 4)),
        'dimensions': np.zeros((0, 3)),
        'location': np.zeros((0, 3)),
        'rotation_y': np.zeros(0),
        'score': np.zeros(0),
    }


def read_kitti_file(path: str, need_score: bool = False) -> Dict[str, np.ndarray]:
    """A KITTI label or result file as the devkit's column arrays (see the module docstring).

    Args:
        path: the ``<id>.txt`` file.
        need_score: a result file: every line must carry the score (16th field); a line
            without it would be ranked with score 0.

    Raises:
        FileNotFoundError: the file does not exist.
        KittiFormatError: a bad line (see :func:`parse_label_fields`), file:line named.
    """
    rows = _read_lines(path, 'KITTI label / result')
    if not rows:
        return empty_kitti_anno()
    if need_score:
        no_score = [k for k, (_, values) in enumerate(rows) if len(values) != 15]
        if no_score:
            raise KittiFormatError(
                f'{path} (object {no_score[0]}): result line has 15 fields, no score (the 16th '
                f'field; {len(no_score)} such line(s)): evaluation ranks detections by score, '
                'write it (a label file given as results? pass the result folder as --pred)')
    v = np.asarray([values if len(values) == 15 else values + [0.0] for _, values in rows],
                   dtype=np.float64)
    return {
        'name': np.array([name for name, _ in rows]),
        'truncated': v[:, 0],
        'occluded': v[:, 1].astype(np.int64),
        'alpha': v[:, 2],
        'bbox': v[:, 3:7],
        'dimensions': v[:, [9, 7, 8]],  # file h, w, l -> l, h, w
        'location': v[:, 10:13],
        'rotation_y': v[:, 13],
        'score': v[:, 14],
    }


def check_kitti_anno(anno: Dict[str, np.ndarray], source: str, is_result: bool) -> None:
    """Raise ``ValueError`` naming ``source`` (a file or image id) for unusable values.

    Checks: all keys present with matching lengths, finite numbers, non-negative dimensions
    of every non-DontCare object, ``z > 0`` for labels, finite scores for results.
    """
    missing = [k for k in ANNO_KEYS if k not in anno]
    if missing:
        raise ValueError(f'{source}: annotation misses keys {missing}')
    n = len(anno['name'])
    for k in ANNO_KEYS[1:]:
        if len(anno[k]) != n:
            raise ValueError(f'{source}: "{k}" has {len(anno[k])} rows, "name" has {n}')
    if n == 0:
        return
    care = np.asarray(anno['name']) != 'DontCare'
    for k in ('bbox', 'dimensions', 'location', 'rotation_y', 'alpha', 'truncated'):
        bad = ~np.isfinite(np.asarray(anno[k], dtype=np.float64).reshape(n, -1)).all(1)
        if bad.any():
            raise ValueError(f'{source}: non-finite "{k}" for object(s) '
                             f'{np.flatnonzero(bad).tolist()}')
    if is_result:
        bad = ~np.isfinite(np.asarray(anno['score'], dtype=np.float64))
        if bad.any():
            raise ValueError(f'{source}: NaN/inf score for object(s) '
                             f'{np.flatnonzero(bad).tolist()}')
    neg = (np.asarray(anno['dimensions'], dtype=np.float64) < 0).any(1) & care
    if neg.any():
        raise ValueError(f'{source}: negative dimensions for object(s) '
                         f'{np.flatnonzero(neg).tolist()}')
    behind = (np.asarray(anno['location'], dtype=np.float64)[:, 2] <= 0) & care
    if behind.any() and not is_result:
        raise ValueError(f'{source}: location z <= 0 (not in front of the camera) for '
                         f'object(s) {np.flatnonzero(behind).tolist()}; fix or remove them')


def load_kitti_dir(folder: str, ids: Iterable[str], is_result: bool,
                   missing_ok: bool = False) -> List[Dict[str, np.ndarray]]:
    """Read ``<folder>/<id>.txt`` for every id, checked (see :func:`check_kitti_anno`).

    Args:
        missing_ok: a missing file counts as "no objects" (otherwise FileNotFoundError).
    """
    annos = []
    for sid in ids:
        path = osp.join(folder, f'{sid}.txt')
        if missing_ok and not osp.isfile(path):
            annos.append(empty_kitti_anno())
            continue
        anno = read_kitti_file(path, need_score=is_result)
        check_kitti_anno(anno, path, is_result)
        annos.append(anno)
    return annos


# ---------------------------------------------------------------------- result files
def detections_to_kitti_anno(bboxes_3d: np.ndarray, scores: np.ndarray, labels: np.ndarray,
                             bboxes_2d: np.ndarray, alphas: Optional[np.ndarray],
                             classes: Sequence[str], sid: str) -> Dict[str, np.ndarray]:
    """One image's detections as devkit column arrays (what the result ``<id>.txt`` holds):
    the one conversion of ``KittiAP40Metric`` (``tools/test.py``) and the ONNX runtime.

    Args:
        bboxes_3d: (N, 7) camera boxes ``x, y, z`` bottom centre, ``l, h, w``, ``ry``.
        scores: (N,) scores; labels: (N,) class indices into ``classes``.
        bboxes_2d: (N, 4) x1 y1 x2 y2 raw-image pixels.
        alphas: (N,) observation angles (radians), or None: ``ry - arctan2(x, z)``; wrapped
            to [-pi, pi].
        classes: label index -> class name.
        sid: the image id, named in errors.
    """
    boxes = np.asarray(bboxes_3d, dtype=np.float64).reshape(-1, 7)
    n = boxes.shape[0]
    if n == 0:
        return empty_kitti_anno()
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    bboxes_2d = np.asarray(bboxes_2d, dtype=np.float64).reshape(-1, 4)
    if not (len(scores) == len(labels) == len(bboxes_2d) == n):
        raise ValueError(f'image {sid}: {n} 3D boxes, {len(scores)} scores, '
                         f'{len(labels)} labels, {len(bboxes_2d)} 2D boxes (must match)')
    if labels.min() < 0 or labels.max() >= len(classes):
        raise ValueError(f'image {sid}: labels_3d outside 0..{len(classes) - 1} '
                         f'(classes {classes})')
    if alphas is None:
        alphas = boxes[:, 6] - np.arctan2(boxes[:, 0], boxes[:, 2])
    else:
        alphas = np.asarray(alphas, dtype=np.float64).reshape(-1)
    alphas = np.arctan2(np.sin(alphas), np.cos(alphas))  # wrap to [-pi, pi]
    anno = {
        'name': np.array([classes[i] for i in labels]),
        'truncated': np.zeros(n),
        'occluded': np.zeros(n, dtype=np.int64),
        'alpha': alphas,
        'bbox': bboxes_2d,
        'dimensions': boxes[:, 3:6],  # l, h, w
        'location': boxes[:, 0:3],
        'rotation_y': boxes[:, 6],
        'score': scores,
    }
    check_kitti_anno(anno, f'predictions for image {sid}', is_result=True)
    return anno


def format_kitti_lines(anno: Dict[str, np.ndarray], score_digits: int = 6) -> List[str]:
    """Result lines (test-server format) for one image, geometry with 4 decimals."""
    lines = []
    dims = anno['dimensions']
    for i in range(len(anno['name'])):
        b = anno['bbox'][i]
        loc = anno['location'][i]
        lines.append(
            f"{anno['name'][i]} -1 -1 {anno['alpha'][i]:.4f} "
            f'{b[0]:.4f} {b[1]:.4f} {b[2]:.4f} {b[3]:.4f} '
            f'{dims[i][1]:.4f} {dims[i][2]:.4f} {dims[i][0]:.4f} '
            f'{loc[0]:.4f} {loc[1]:.4f} {loc[2]:.4f} {anno["rotation_y"][i]:.4f} '
            f"{anno['score'][i]:.{score_digits}f}")
    return lines


def write_kitti_results(folder: str, ids: Sequence[str],
                        annos: Sequence[Dict[str, np.ndarray]],
                        all_ids: Optional[Sequence[str]] = None) -> None:
    """Write one ``<id>.txt`` per image (an empty file for an image without detections).

    Args:
        all_ids: ids of images that must get a file even when absent from ``ids``.
    """
    os.makedirs(folder, exist_ok=True)
    written = set()
    for sid, anno in zip(ids, annos):
        with open(osp.join(folder, f'{sid}.txt'), 'w') as f:
            lines = format_kitti_lines(anno)
            f.write('\n'.join(lines) + ('\n' if lines else ''))
        written.add(sid)
    for sid in all_ids or ():
        if sid not in written:
            open(osp.join(folder, f'{sid}.txt'), 'w').close()
