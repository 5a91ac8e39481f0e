"""Reading and writing KITTI object label / result files.

One line per object (KITTI devkit ``readme.txt``)::

    type truncated occluded alpha x1 y1 x2 y2 h w l x y z ry [score]

2D boxes in image pixels; ``h w l`` metres; ``x y z`` the bottom centre of the box in the
camera frame (metres, y down); ``alpha``, ``ry`` radians. Result files (the test-server
format) carry the 16th ``score`` column and ``-1 -1`` for truncation and occlusion.

Annotations are dicts of numpy arrays in mmdet3d's layout (``get_label_anno``):
``name`` (N,) str, ``truncated`` (N,), ``occluded`` (N,) int, ``alpha`` (N,), ``bbox`` (N, 4),
``dimensions`` (N, 3) **l, h, w**, ``location`` (N, 3), ``rotation_y`` (N,), ``score`` (N,)
(zeros in ground truth files without scores).
"""
import os
import os.path as osp
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

from ...structures.classes import KITTI_CLASSES as KITTI_NAMES

NUM_LABEL_FIELDS = 15
NUM_RESULT_FIELDS = 16
ANNO_KEYS = ('name', 'truncated', 'occluded', 'alpha', 'bbox', 'dimensions', 'location',
             'rotation_y', 'score')


def empty_kitti_anno() -> Dict[str, np.ndarray]:
    """An annotation dict with no objects."""
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


def read_kitti_file(path: str) -> Dict[str, np.ndarray]:
    """Parse a KITTI label or result file into an annotation dict (see module docstring).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a line has the wrong number of fields or a field is not a number.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'KITTI file not found: {path}')
    names: List[str] = []
    values: List[List[float]] = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) not in (NUM_LABEL_FIELDS, NUM_RESULT_FIELDS):
                raise ValueError(f'{path}:{lineno}: expected {NUM_LABEL_FIELDS} or '
                                 f'{NUM_RESULT_FIELDS} fields, got {len(fields)}')
            try:
                nums = [float(x) for x in fields[1:]]
            except ValueError as e:
                raise ValueError(f'{path}:{lineno}: non-numeric field ({e})') from None
            if len(nums) == NUM_LABEL_FIELDS - 1:
                nums.append(0.0)
            names.append(fields[0])
            values.append(nums)
    if not names:
        return empty_kitti_anno()
    v = np.asarray(values, dtype=np.float64)
    return {
        'name': np.array(names),
        'truncated': v[:, 0],
        'occluded': v[:, 1].astype(np.int64),
        'alpha': v[:, 2],
        'bbox': v[:, 3:7],
        'dimensions': v[:, [9, 7, 8]],  # file h, w, l -> l, h, w
        'location': v[:, 10:13],
        'rotation_y': v[:, 13],
        'score': v[:, 14],
    }


def check_class_names(names: Sequence[str], source: str, unknown: str = 'error') -> int:
    """Object names outside KITTI's list (``Carr``) are an error, never a silent drop.

    Args:
        names: the file's object names.
        source: file named in the message.
        unknown: 'error' (raise ``ValueError``) or 'count' (return their number; the caller
            reports the total).

    Returns:
        The number of unknown names (0 when ``unknown='error'``, which raises instead).
    """
    if unknown not in ('error', 'count'):
        raise ValueError(f"unknown must be 'error' or 'count', got {unknown!r}")
    bad = sorted({str(n) for n in names} - set(KITTI_NAMES))
    if bad and unknown == 'error':
        raise ValueError(f'{source}: unknown class name(s) {bad} (KITTI names: '
                         f'{", ".join(KITTI_NAMES)}); fix the file, or pass '
                         '--allow-unknown-classes to count and skip them')
    return sum(str(n) in bad for n in names)


def check_kitti_anno(anno: Dict[str, np.ndarray], source: str, is_result: bool,
                     unknown: str = 'error') -> int:
    """Raise ``ValueError`` naming ``source`` (a file or image id) for unusable values.

    Checks: all keys present with matching lengths, known class names (see
    :func:`check_class_names`; returns the count of unknown ones with ``unknown='count'``),
    finite numbers, non-negative dimensions of every non-DontCare object, finite scores for
    results.
    """
    missing = [k for k in ANNO_KEYS if k not in anno]
    if missing:
        raise ValueError(f'{source}: annotation misses keys {missing}')
    n = len(anno['name'])
    for k in ANNO_KEYS[1:]:
        if len(anno[k]) != n:
            raise ValueError(f'{source}: "{k}" has {len(anno[k])} rows, "name" has {n}')
    if n == 0:
        return 0
    n_unknown = check_class_names(anno['name'], source, unknown)
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
    return n_unknown


def read_split_file(path: str) -> List[str]:
    """Image ids (strings, e.g. '000015') listed one per line in a split file."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'split file not found: {path}')
    with open(path) as f:
        ids = [line.strip() for line in f if line.strip()]
    if not ids:
        raise ValueError(f'split file {path} lists no image ids')
    return ids


def load_kitti_dir(folder: str, ids: Iterable[str], is_result: bool,
                   missing_ok: bool = False, unknown: str = 'error'
                   ) -> List[Dict[str, np.ndarray]]:
    """Read ``<folder>/<id>.txt`` for every id, checked (see ``check_kitti_anno``).

    Args:
        missing_ok: a missing file counts as "no objects" (otherwise FileNotFoundError).
        unknown: 'error' (default) or 'count': unknown class names are then counted and a
            warning gives their total (they match no evaluated class).
    """
    import warnings
    annos = []
    n_unknown = 0
    for sid in ids:
        path = osp.join(folder, f'{sid}.txt')
        if missing_ok and not osp.isfile(path):
            annos.append(empty_kitti_anno())
            continue
        anno = read_kitti_file(path)
        n_unknown += check_kitti_anno(anno, path, is_result, unknown)
        annos.append(anno)
    if n_unknown:
        warnings.warn(f'{folder}: {n_unknown} object(s) with an unknown class name were '
                      'skipped (--allow-unknown-classes)', UserWarning, stacklevel=2)
    return annos


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
