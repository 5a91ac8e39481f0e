"""Readers for the raw KITTI object files (``label_2/*.txt``, ``calib/*.txt``).

Every reader raises :class:`KittiFormatError` (a ``ValueError``) naming the file, the line and the
problem, so that a broken dataset stops with one clear message instead of a silent wrong result.

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
from typing import Dict, List, Optional

import numpy as np

#: Every object name used by the KITTI object benchmark.
KITTI_NAMES = ('Car', 'Van', 'Truck', 'Pedestrian', 'Person_sitting', 'Cyclist', 'Tram', 'Misc',
               'DontCare')
#: Fields of a label line: 15, or 16 when a detection score follows.
NUM_LABEL_FIELDS = (15, 16)


class KittiFormatError(ValueError):
    """A KITTI file that cannot be read as it should; the message names the file."""


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


def project_to_image(points: np.ndarray, cam2img: np.ndarray) -> np.ndarray:
    """Project camera-frame points through P2, dividing by the point depth ``z``.

    Args:
        points: (N, 3) camera frame, metres.
        cam2img: (3, 4) or (4, 4) projection matrix P2.

    Returns:
        (N, 2) float64 pixel coordinates ``(u, v)``.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    proj = np.asarray(cam2img, dtype=np.float64)[:3, :4]
    homo = np.concatenate([points, np.ones((len(points), 1))], axis=1)
    uvw = homo @ proj.T
    with np.errstate(divide='ignore', invalid='ignore'):  # z == 0 -> inf, never a silent finite
        return uvw[:, :2] / points[:, 2:3]


def read_calib(calib_path: str) -> Dict[str, np.ndarray]:
    """Read a KITTI calibration file.

    Args:
        calib_path: ``calib/<id>.txt``; lines ``KEY: v1 v2 ...``.

    Returns:
        dict of float64 arrays: every key found, reshaped (P*: 3x4, R0_rect: 3x3, Tr_*: 3x4), plus
        ``cam2img``: P2 padded to 4x4 with the row ``[0, 0, 0, 1]``.

    Raises:
        KittiFormatError: the file is missing, has no ``P2`` line, or P2 is not 12 finite numbers.
    """
    if not os.path.isfile(calib_path):
        raise KittiFormatError(f'{calib_path}: calibration file not found')
    calib: Dict[str, np.ndarray] = {}
    with open(calib_path) as f:
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
    cam2img = np.eye(4)
    cam2img[:3, :4] = calib['P2']
    calib['cam2img'] = cam2img
    return calib


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


def parse_label_line(line: str, where: str) -> dict:
    """Parse one label line into the contract's instance fields (without labels/projection).

    Args:
        line: ``name trunc occ alpha x1 y1 x2 y2 h w l x y z ry [score]``.
        where: ``file:line`` used in error messages.

    Returns:
        dict with ``name``, ``truncated``, ``occluded``, ``alpha``, ``bbox`` [x1, y1, x2, y2],
        ``bbox_3d`` [x, y, z, l, h, w, ry], ``score`` (float or None), ``difficulty``, ``depth``.
    """
    fields = line.split()
    if len(fields) not in NUM_LABEL_FIELDS:
        raise KittiFormatError(f'{where}: label line has {len(fields)} fields, expected 15 (or 16 '
                               f'with a score): {line.strip()!r}')
    name = fields[0]
    if name not in KITTI_NAMES:
        raise KittiFormatError(f'{where}: unknown class name {name!r} (known: {KITTI_NAMES})')
    try:
        values = [float(v) for v in fields[1:]]
    except ValueError:
        raise KittiFormatError(f'{where}: non-numeric field in label line: {line.strip()!r}') \
            from None
    if not all(math.isfinite(v) for v in values):
        raise KittiFormatError(f'{where}: NaN or inf in label line: {line.strip()!r}')
    truncated, occluded, alpha = values[0], values[1], values[2]
    bbox = values[3:7]
    h, w, l_ = values[7:10]
    check_dimensions(name, (h, w, l_), where)
    x, y, z = values[10:13]
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
    """
    if not os.path.isfile(label_path):
        raise KittiFormatError(f'{label_path}: label file not found')
    instances = []
    with open(label_path) as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            instances.append(parse_label_line(line, f'{label_path}:{line_no}'))
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
