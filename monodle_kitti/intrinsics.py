"""Camera intrinsics in any form -> the (4, 4) ``cam2img`` (KITTI P2 layout) of each image.

The one parser of intrinsics for inference (``tools/demo.py``, :class:`MonoDLEInferencer`,
``tools/deployment/ort_infer.py``). Standard library + numpy only (PyYAML / OpenCV imported when
a YAML file is read): part of the torch-free package, so ``ort_infer.py`` imports it without
torch. KITTI calib files are read by :func:`monodle_kitti.kitti_io.read_calib`.

Accepted forms (:data:`FORMS`), per image or one for all:

- a KITTI calibration file (its ``P2:`` line, 12 numbers) or a folder of ``<image stem>.txt``
  (``.json`` / ``.yaml`` / ``.yml`` files in the folder are read too); without anything, images
  in a KITTI layout use ``../calib/<stem>.txt`` next to ``image_2/``;
- a 3x3 ``K`` (a text file with 9 numbers, a nested list / array in Python, or 9 numbers on the
  command line), or a 3x4 / 4x4 projection matrix;
- ``fx fy cx cy`` (4 numbers: ``--intrinsics fx fy cx cy``);
- a JSON file ``{"K": [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]}`` or
  ``{"fx": .., "fy": .., "cx": .., "cy": ..}``;
- an OpenCV calibration YAML with ``camera_matrix`` (``cv2.FileStorage``'s ``!!opencv-matrix``
  or the ROS ``camera_info`` layout ``{rows: 3, cols: 3, data: [...]}``).

A ``K`` becomes ``cam2img = [[K, 0], [0, 0, 0, 1]]`` (no baseline term: the camera frame is the
camera's own). Units: pixels. Anything missing or malformed raises :class:`IntrinsicsError`
(a ``ValueError``): one line naming the file (or value), the problem and the forms accepted.
"""
from __future__ import annotations

import json
import os.path as osp
from typing import Any, Sequence

import numpy as np

from .kitti_io import KittiFormatError, kitti_sibling, read_calib

#: The forms accepted, as named in every error message.
FORMS = ('a KITTI calib file (P2 line) or a folder of <image stem>.txt',
         'a 3x3 K (text file with 9 numbers)', '--intrinsics fx fy cx cy',
         'a JSON file {"K": [[...]]} or {"fx":..,"fy":..,"cx":..,"cy":..}',
         'an OpenCV calibration YAML with camera_matrix')
#: File extensions looked up in an intrinsics folder, in order.
FOLDER_EXTS = ('.txt', '.json', '.yaml', '.yml')


class IntrinsicsError(ValueError):
    """Missing or malformed intrinsics; the message names the file and the accepted forms."""


def _error(where: str, problem: str) -> IntrinsicsError:
    return IntrinsicsError(f'{where}: {problem}; accepted intrinsics: {"; ".join(FORMS)}')


def cam2img_from_values(values: Any, where: str = 'intrinsics') -> np.ndarray:
    """4 numbers ``fx fy cx cy``, a 3x3 ``K``, or a 3x4 / 4x4 projection -> (4, 4) float64.

    Raises:
        IntrinsicsError: another shape, non-finite values, ``fx`` or ``fy`` <= 0, or a ``K``
            whose last row is not ``0 0 1``.
    """
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise _error(where, f'not numbers: {str(values)[:80]!r}') from None
    flat = arr.reshape(-1)
    if flat.size == 4 and arr.ndim <= 1:
        fx, fy, cx, cy = flat
        k = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    elif flat.size == 9:
        k = flat.reshape(3, 3)
    elif flat.size in (12, 16):
        k = None
    else:
        raise _error(where, f'{flat.size} numbers (4, 9, 12 or 16 expected)')
    if not np.isfinite(flat).all():
        raise _error(where, 'NaN or inf in the intrinsics')
    if k is not None:
        if not np.allclose(k[2], [0.0, 0.0, 1.0]):
            raise _error(where, f'the last row of K is {k[2].tolist()}, not [0, 0, 1]')
        p = np.zeros((4, 4))
        p[:3, :3] = k
        p[3, 3] = 1.0
    else:
        p = np.eye(4)
        p[:3] = flat[:12].reshape(3, 4)
    fx, fy = float(p[0, 0]), float(p[1, 1])
    if fx <= 0 or fy <= 0:
        raise _error(where, f'focal lengths (fu, fv) = ({fx:g}, {fy:g}) must be > 0 '
                     '(an all-zero or broken K)')
    return p


def read_kitti_p2(path: str) -> np.ndarray:
    """P2 of a KITTI calibration file as (4, 4) float64 (last row ``0 0 0 1``), read by the one
    calib reader :func:`monodle_kitti.kitti_io.read_calib`, then checked as any intrinsics."""
    try:
        p2 = read_calib(path)['P2']
    except KittiFormatError as err:
        raise _error(path, f'not a valid KITTI calib file ({str(err).replace(path + ": ", "")})'
                     ) from None
    return cam2img_from_values(p2, path)


def _read_json(path: str) -> np.ndarray:
    try:
        with open(path, encoding='utf-8-sig') as f:
            data = json.load(f)
    except json.JSONDecodeError as err:
        raise _error(path, f'not valid JSON ({err.msg}, line {err.lineno})') from None
    if isinstance(data, dict) and 'K' in data:
        return cam2img_from_values(data['K'], f'{path} (key K)')
    keys = ('fx', 'fy', 'cx', 'cy')
    if isinstance(data, dict) and all(k in data for k in keys):
        return cam2img_from_values([data[k] for k in keys], path)
    found = sorted(data) if isinstance(data, dict) else type(data).__name__
    raise _error(path, f'JSON holds {found}, neither "K" nor all of fx, fy, cx, cy')


def _read_yaml(path: str) -> np.ndarray:
    with open(path, encoding='utf-8-sig', errors='replace') as f:
        text = f.read()
    if text.lstrip().startswith('%YAML') or 'opencv-matrix' in text:  # cv2.FileStorage file
        import cv2
        try:
            fs = cv2.FileStorage(path, cv2.FILE_STORAGE_READ)
            node = fs.getNode('camera_matrix')
            mat = None if node.empty() else node.mat()
            fs.release()
        except cv2.error as err:
            raise _error(path, f'OpenCV cannot read this YAML ({str(err).strip()[-80:]})') \
                from None
        if mat is None:
            raise _error(path, 'no camera_matrix in this OpenCV YAML')
        return cam2img_from_values(mat, f'{path} (camera_matrix)')
    import yaml
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise _error(path, f'not valid YAML ({" ".join(str(err).split())[:80]})') from None
    if not isinstance(data, dict) or 'camera_matrix' not in data:
        found = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise _error(path, f'YAML holds {found}, no camera_matrix')
    mat = data['camera_matrix']
    if isinstance(mat, dict):  # ROS camera_info / OpenCV-style {rows, cols, data}
        mat = mat.get('data')
    return cam2img_from_values(mat, f'{path} (camera_matrix)')


def read_intrinsics_file(path: str) -> np.ndarray:
    """One intrinsics file (KITTI calib, 9 / 12 numbers, JSON or YAML) -> (4, 4) cam2img."""
    if not osp.isfile(path):
        raise _error(path, 'intrinsics file not found')
    ext = osp.splitext(path)[1].lower()
    if ext == '.json':
        return _read_json(path)
    if ext in ('.yaml', '.yml'):
        return _read_yaml(path)
    try:
        with open(path, encoding='utf-8-sig') as f:
            text = f.read()
    except UnicodeDecodeError:
        raise _error(path, 'not a text file') from None
    if any(line.startswith('P2:') for line in text.splitlines()):
        return read_kitti_p2(path)
    try:
        values = [float(v) for v in text.replace(',', ' ').split()]
    except ValueError:
        raise _error(path, 'neither a KITTI calib file (no "P2:" line) nor plain numbers') \
            from None
    return cam2img_from_values(values, path)


def kitti_calib_for(img_path: str) -> str:
    """``.../calib/<stem>.txt`` next to ``.../image_2/<stem>.png`` (KITTI layout)."""
    return kitti_sibling(img_path, 'calib', '.txt')


class Intrinsics:
    """Resolve the intrinsics of each image from one user-given spec.

    Args:
        spec: None (KITTI layout: ``../calib/<stem>.txt``); a file or folder path (see the
            module docstring); numbers (4 ``fx fy cx cy``, 9 for ``K``, 12 / 16 for a
            projection; a flat list, a nested list or an array); a list of the command line's
            strings (one path, or numbers); or a dict ``{image stem: any of these}``.
    """

    def __init__(self, spec: Any = None) -> None:
        self.spec = spec
        self._fixed = None
        if isinstance(spec, (list, tuple)) and spec and all(isinstance(s, str) for s in spec):
            if len(spec) == 1:
                self.spec = spec = spec[0]
            else:
                try:
                    self.spec = spec = [float(s) for s in spec]
                except ValueError:
                    raise _error(' '.join(spec), 'give one file / folder or 4 / 9 numbers') \
                        from None
        if isinstance(spec, str):
            if not osp.exists(spec):
                raise _error(spec, 'intrinsics file or folder not found')
            if osp.isfile(spec):
                self._fixed = (read_intrinsics_file(spec), spec)
        elif spec is not None and not isinstance(spec, dict):
            self._fixed = (cam2img_from_values(spec, f'intrinsics {np.asarray(spec).tolist()}'),
                           'intrinsics given')

    def describe(self) -> str:
        """Where the intrinsics come from, for logs."""
        if self._fixed is not None:
            return self._fixed[1]
        if self.spec is None:
            return 'KITTI layout (../calib/<stem>.txt)'
        return str(self.spec) if isinstance(self.spec, str) else 'per-image dict'

    def __call__(self, img_path: str, stem: str | None = None) -> tuple[np.ndarray, str]:
        """``(cam2img (4, 4) float64, where it was read)`` for one image (or video)."""
        if self._fixed is not None:
            return self._fixed[0].copy(), self._fixed[1]
        stem = stem or osp.splitext(osp.basename(img_path))[0]
        if isinstance(self.spec, dict):
            if stem not in self.spec:
                raise _error('intrinsics dict', f'no entry for image {stem!r} (keys: '
                             f'{sorted(self.spec)[:5]})')
            return Intrinsics(self.spec[stem])(img_path, stem)
        if self.spec is None:
            path = kitti_calib_for(img_path)
            if not osp.isfile(path):
                raise _error(img_path, f'no intrinsics given and {path} not found (KITTI layout)')
            return read_kitti_p2(path), path
        for ext in FOLDER_EXTS:  # a folder of per-image files
            path = osp.join(self.spec, stem + ext)
            if osp.isfile(path):
                return read_intrinsics_file(path), path
        raise _error(img_path, f'no {stem}{{{",".join(FOLDER_EXTS)}}} in the intrinsics folder '
                     f'{self.spec}')


def as_intrinsics(spec: Any) -> Intrinsics:
    """``spec`` if it already is an :class:`Intrinsics`, else ``Intrinsics(spec)``."""
    return spec if isinstance(spec, Intrinsics) else Intrinsics(spec)


def focal_at_input(cam2img: np.ndarray, image_wh: Sequence[int], input_w: int) -> float:
    """Horizontal focal length (pixels) at the network input of MonoDLE's whole-image warp,
    which scales the image uniformly by ``input_w / image_w``."""
    return float(cam2img[0][0]) * float(input_w) / float(image_wh[0])




# ---------------------------------------------------------------------- virtual camera
#: The training camera (KITTI's left colour camera, P2 of most drives): focal length over image
#: width. MonoDLE's test-time warp scales the whole image by ``input_w / image_w``, so the focal
#: length at the network input, the quantity depth is learnt for, is proportional to this.
KITTI_FX = 721.5377
KITTI_WIDTH = 1242
KITTI_HEIGHT = 375
#: Relative focal difference below which a camera counts as the training camera (KITTI's own
#: frames span fx / W from 707.05 / 1242 to 721.54 / 1224: about +-2 %; they are left as is).
NORMALIZE_DEADBAND = 0.03


def virtual_camera_scale(cam2img: np.ndarray, image_wh: Sequence[int],
                         reference_fx_over_w: float = KITTI_FX / KITTI_WIDTH) -> float:
    """Focal ratio of this camera to the training camera, at the network input.

    MonoDLE's test warp scales the whole image by ``input_w / W``: the focal length at the
    network input is ``fx * input_w / W``, and the depth the network learnt is for the
    training camera's. The ratio is ``s = (fx / W) / (fx_train / W_train)``; 1.0 within
    :data:`NORMALIZE_DEADBAND`. Without normalisation the depth is off by about ``1 / s``.
    """
    ratio = float(cam2img[0][0]) / float(image_wh[0]) / float(reference_fx_over_w)
    return 1.0 if abs(ratio - 1.0) <= NORMALIZE_DEADBAND else ratio


def virtual_camera(img: np.ndarray, cam2img: np.ndarray,
                   reference_fx_over_w: float = KITTI_FX / KITTI_WIDTH
                   ) -> tuple[np.ndarray, np.ndarray, tuple[int, int], float]:
    """The image as the training camera would frame it: same focal length at the network input.

    The image is padded (black) or cropped horizontally, centred, to the width
    ``W' = round(W * s)`` (:func:`virtual_camera_scale`), so that after the warp to the network
    input width its focal length equals the training camera's (a narrow camera is padded, a wide
    one cropped: objects beyond the training field of view are not seen). Pixels are not
    resampled; only the principal point moves, ``cx' = cx + dx``. Boxes decoded with ``P'`` are
    in the same camera frame; 2D boxes map back by ``u = u' - dx``.

    Args:
        img: (H, W, 3) BGR uint8.
        cam2img: (4, 4) or (3, 4) projection of ``img``, pixels.

    Returns:
        ``(virtual image, its (4, 4) projection, (dx, dy) pixel shift, s)``; the input itself
        and ``(0, 0)`` when ``s == 1``.
    """
    h, w = img.shape[:2]
    p = np.eye(4)
    p[:3] = np.asarray(cam2img, np.float64)[:3]
    s = virtual_camera_scale(p, (w, h), reference_fx_over_w)
    new_w = int(round(w * s))
    if s == 1.0 or new_w == w:
        return img, p, (0, 0), 1.0
    if new_w > w:
        left = (new_w - w) // 2
        out = np.zeros((h, new_w) + img.shape[2:], img.dtype)
        out[:, left:left + w] = img
        dx = left
    else:
        x0 = (w - new_w) // 2
        out = np.ascontiguousarray(img[:, x0:x0 + new_w])
        dx = -x0
    p_virtual = p.copy()
    p_virtual[0, 2] += dx  # the principal point moves with the pixels (P[:, 3] stays: the
    # package projects by dividing by the point's depth, so u' = u + dx exactly)
    return out, p_virtual, (dx, 0), s


def camera_warnings(cam2img: np.ndarray, image_wh: Sequence[int], input_wh: Sequence[int],
                    where: str) -> list[str]:
    """Ways this camera differs from the training camera that depth scaling cannot undo.

    - the principal point far from the image centre (> 10 % of the width / 15 % of the height;
      KITTI: 1 % / 4 %);
    - an aspect ratio that makes MonoDLE's whole-image warp (uniform scale ``input_w / W``, the
      height centred) crop more than 10 % of the image rows.
    """
    w, h = float(image_wh[0]), float(image_wh[1])
    cx, cy = float(cam2img[0][2]), float(cam2img[1][2])
    out = []
    if abs(cx - w / 2) > 0.10 * w or abs(cy - h / 2) > 0.15 * h:
        out.append(f'{where}: principal point ({cx:.0f}, {cy:.0f}) is far from the image centre '
                   f'({w / 2:.0f}, {h / 2:.0f}) (KITTI: within 1 % / 4 %); boxes near the '
                   'borders may be off; centre the principal point (crop / pad the image)')
    visible = float(input_wh[1]) / (h * float(input_wh[0]) / w)
    if visible < 0.9:
        out.append(f'{where}: aspect {w / h:.2f} (W/H) vs the network input '
                   f'{input_wh[0] / input_wh[1]:.2f}: the warp to {input_wh[0]}x{input_wh[1]} '
                   f'keeps only the central {100 * visible:.0f} % of the image rows; crop the '
                   'image to a KITTI-like aspect for objects near the top / bottom')
    return out


#: Largest accepted distance of the principal point from the image centre, as a fraction of
#: the image side (KITTI: about 2 % horizontally, 8 % vertically; a 2x-resized image: > 45 %).
PRINCIPAL_POINT_TOLERANCE = 0.25


def p2_problems(cam2img: np.ndarray, hw: tuple[int, int], calib_path: str,
                img_path: str) -> list[str]:
    """What is wrong with an image's P2, wherever a calibration enters (training data checks,
    ``tools/demo.py``, ``MonoDLEInferencer``, ``tools/deployment/ort_infer.py``); empty when it
    is usable.

    Checks: 12 finite numbers, positive focal lengths ``fu, fv`` (an all-zero P2 made NaN
    coordinates, or crashed OpenCV), and the principal point within
    :data:`PRINCIPAL_POINT_TOLERANCE` of the image centre (else the image was resized without
    its calibration, or the calibration is another camera's).

    Args:
        cam2img: P2, (3, 4) or (4, 4), pixels.
        hw: the image's (H, W), pixels.
        calib_path, img_path: named in the messages.
    """
    p2 = np.asarray(cam2img, np.float64)
    if p2.ndim != 2 or p2.shape[0] < 3 or p2.shape[1] != 4:
        return [f'{calib_path}: P2 must be 3x4, got shape {p2.shape}']
    if not np.isfinite(p2[:3]).all():
        return [f'{calib_path}: P2 contains NaN or inf']
    fu, fv = float(p2[0, 0]), float(p2[1, 1])
    if fu <= 0 or fv <= 0:
        return [f'{calib_path}: P2 focal lengths (fu, fv) = ({fu:g}, {fv:g}) must be > 0 (an '
                'all-zero or broken calibration); use the calib file of this camera']
    h, w = hw
    cx, cy = float(p2[0, 2]), float(p2[1, 2])
    if (abs(cx - w / 2) > PRINCIPAL_POINT_TOLERANCE * w
            or abs(cy - h / 2) > PRINCIPAL_POINT_TOLERANCE * h):
        return [f'{img_path}: image is {w}x{h} but the principal point of {calib_path} is '
                f'({cx:.1f}, {cy:.1f}), far from its centre: image resized or calibration of '
                'another camera/frame (scale P2 with the image, or use its own calib file)']
    return []


__all__ = ['FORMS', 'Intrinsics', 'IntrinsicsError', 'KITTI_FX', 'KITTI_HEIGHT', 'KITTI_WIDTH',
           'NORMALIZE_DEADBAND', 'PRINCIPAL_POINT_TOLERANCE', 'as_intrinsics',
           'cam2img_from_values', 'camera_warnings', 'focal_at_input', 'kitti_calib_for',
           'p2_problems', 'read_intrinsics_file', 'read_kitti_p2', 'virtual_camera',
           'virtual_camera_scale']
