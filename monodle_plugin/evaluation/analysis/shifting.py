"""Localisation error by shifting projected centres (MonoDLE's ``tools/loc_error_by_shifting.py``).

The official script converts a pixel shift of the projected 3D centre at a given depth into a
3D location error. Here the shift is applied to every box of a set of result files (or of the
ground truth used as detections) and the KITTI AP is measured as a function of the shift:
each box's 3D centre (``location`` minus half its height, camera frame) is projected with P2
(``geometry.project_to_image``), moved by ``shift`` pixels in the image and back-projected at
the same depth ``z`` (``geometry.image_to_camera``, its exact inverse); size,
heading and score stay. Shift 0 returns the boxes unchanged up to float rounding.
"""
from typing import Dict, Sequence, Tuple

import numpy as np

from ...structures.geometry import image_to_camera, project_to_image

DIRECTIONS = ('random', 'u', 'v', 'uv')


def shift_offsets(n: int, shift: float, direction: str,
                  rng: np.random.Generator) -> np.ndarray:
    """(n, 2) pixel offsets of length ``shift``: along u, v, the diagonal, or a random angle."""
    if direction not in DIRECTIONS:
        raise ValueError(f'direction {direction!r}: choose from {DIRECTIONS}')
    if direction == 'random':
        theta = rng.uniform(0, 2 * np.pi, n)
    else:
        theta = np.full(n, {'u': 0.0, 'v': np.pi / 2, 'uv': np.pi / 4}[direction])
    return shift * np.stack([np.cos(theta), np.sin(theta)], 1)


def shift_anno(anno: Dict[str, np.ndarray], cam2img: np.ndarray,
               offsets: np.ndarray) -> Dict[str, np.ndarray]:
    """Copy of one frame's annotation with each box's projected 3D centre moved by
    ``offsets`` (N, 2) pixels at unchanged depth; ``alpha`` keeps ``ry - atan2(x, z)``."""
    out = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in anno.items()}
    n = len(anno['name'])
    if n == 0:
        return out
    loc = np.asarray(anno['location'], dtype=np.float64).reshape(n, 3)
    h = np.asarray(anno['dimensions'], dtype=np.float64).reshape(n, 3)[:, 1]
    centre = loc - np.stack([np.zeros(n), h / 2, np.zeros(n)], 1)
    uv = project_to_image(centre, cam2img) + offsets
    x, y = image_to_camera(uv[:, 0], uv[:, 1], centre[:, 2], cam2img)
    new_centre = np.stack([x, y, centre[:, 2]], 1)
    new_loc = new_centre + np.stack([np.zeros(n), h / 2, np.zeros(n)], 1)
    out['location'] = new_loc
    ry = np.asarray(anno['rotation_y'], dtype=np.float64)
    alpha = ry - np.arctan2(new_loc[:, 0], new_loc[:, 2])
    out['alpha'] = np.arctan2(np.sin(alpha), np.cos(alpha))
    return out


def shift_annos(annos: Sequence[dict], cam2imgs: Sequence[np.ndarray], shift: float,
                direction: str = 'random', seed: int = 0
                ) -> Tuple[list, np.ndarray]:
    """Shift every frame; returns the shifted annotations and the 3D location error
    (metres, (N_total,)) each box got."""
    rng = np.random.default_rng(seed)
    out, errors = [], []
    for anno, cam2img in zip(annos, cam2imgs):
        off = shift_offsets(len(anno['name']), shift, direction, rng)
        moved = shift_anno(anno, cam2img, off)
        out.append(moved)
        if len(anno['name']):
            errors.append(np.linalg.norm(moved['location'] - anno['location'], axis=1))
    return out, (np.concatenate(errors) if errors else np.zeros(0))


def gt_as_detections(gt_annos: Sequence[dict], classes: Sequence[str]) -> list:
    """Ground truth of ``classes`` as result annotations with score 1 (the oracle detector)."""
    out = []
    for a in gt_annos:
        keep = np.isin(np.asarray(a['name']).astype(str), list(classes))
        n = len(a['name'])
        d = {k: (np.asarray(v)[keep] if isinstance(v, np.ndarray) and len(v) == n else v)
             for k, v in a.items()}
        d['score'] = np.ones(int(keep.sum()))
        out.append(d)
    return out
