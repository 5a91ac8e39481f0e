"""Synthetic KITTI ground truth and detections, for tests and benchmarks of the evaluation.

Ground truth: random 3D boxes in front of a KITTI-like camera, 2D boxes from the projected
corners (clipped to the image), random truncation / occlusion, a mix of classes (Car, Van,
Pedestrian, Person_sitting, Cyclist, Truck, Misc) and DontCare regions. Detections: noisy
copies of most ground-truth objects (position error growing with depth, yaw noise, sometimes
the wrong class or a flipped heading), plus random false positives; scores in (0, 1).
Defaults give about 4 label lines and 10.6 detections per frame, i.e. a KITTI-val-sized set
(3769 frames) has about 15k ground-truth lines and 40k detections.
"""
from typing import Dict, List, Tuple

import numpy as np

# A KITTI-like P2 (pixels) and image size.
_FX, _CX, _CY = 721.5377, 609.5593, 172.854
_IMG_W, _IMG_H = 1242.0, 375.0
_CLASS_P = {'Car': 0.62, 'Van': 0.07, 'Pedestrian': 0.15, 'Person_sitting': 0.02,
            'Cyclist': 0.08, 'Truck': 0.03, 'Misc': 0.03}
_DIMS = {'Car': (3.9, 1.5, 1.6), 'Van': (5.0, 2.2, 1.9), 'Pedestrian': (0.8, 1.75, 0.6),
         'Person_sitting': (0.8, 1.3, 0.6), 'Cyclist': (1.8, 1.7, 0.6),
         'Truck': (10.0, 3.2, 2.6), 'Misc': (3.0, 1.8, 1.5)}


def project_box_2d(loc: np.ndarray, dims_lhw: np.ndarray, ry: np.ndarray) -> np.ndarray:
    """Image boxes (N, 4) of camera-frame bottom-centre boxes, clipped to the image."""
    length, h, w = dims_lhw[:, 0:1], dims_lhw[:, 1:2], dims_lhw[:, 2:3]
    u = np.array([1, 1, -1, -1, 1, 1, -1, -1]) * 0.5 * length
    v = np.array([0, 0, 0, 0, -1, -1, -1, -1]) * h
    s = np.array([1, -1, -1, 1, 1, -1, -1, 1]) * 0.5 * w
    c, sn = np.cos(ry)[:, None], np.sin(ry)[:, None]
    x = loc[:, 0:1] + c * u + sn * s
    y = loc[:, 1:2] + v
    z = np.maximum(loc[:, 2:3] - sn * u + c * s, 0.5)
    px = _FX * x / z + _CX
    py = _FX * y / z + _CY
    box = np.stack([px.min(1), py.min(1), px.max(1), py.max(1)], 1)
    box[:, [0, 2]] = box[:, [0, 2]].clip(0, _IMG_W - 1)
    box[:, [1, 3]] = box[:, [1, 3]].clip(0, _IMG_H - 1)
    return box


def _objects(rng: np.random.Generator, names: List[str]) -> Dict[str, np.ndarray]:
    n = len(names)
    base = np.array([_DIMS[c] for c in names]).reshape(n, 3)
    dims = base * rng.uniform(0.85, 1.15, (n, 3))
    z = rng.uniform(4.0, 60.0, n)
    x = rng.uniform(-0.55, 0.55, n) * z
    y = 1.65 + rng.normal(0, 0.15, n)
    loc = np.stack([x, y, z], 1)
    ry = rng.uniform(-np.pi, np.pi, n)
    return dict(dimensions=dims, location=loc, rotation_y=ry)


def make_synthetic_kitti(num_frames: int, seed: int = 0, gt_per_frame: float = 3.0,
                         dontcare_per_frame: float = 1.0, fp_per_frame: float = 8.2,
                         recall: float = 0.85) -> Tuple[List[dict], List[dict]]:
    """Ground-truth and detection annotation lists (``kitti_io`` layout), one dict per frame."""
    rng = np.random.default_rng(seed)
    cls_names = list(_CLASS_P)
    cls_p = np.array(list(_CLASS_P.values()))
    cls_p = cls_p / cls_p.sum()
    gts, dts = [], []
    for _ in range(num_frames):
        n = rng.poisson(gt_per_frame)
        names = list(rng.choice(cls_names, n, p=cls_p))
        obj = _objects(rng, names)
        bbox = project_box_2d(obj['location'], obj['dimensions'], obj['rotation_y'])
        alpha = obj['rotation_y'] - np.arctan2(obj['location'][:, 0], obj['location'][:, 2])
        trunc = np.where(rng.random(n) < 0.7, 0.0, rng.uniform(0, 0.8, n)).round(2)
        occ = rng.choice(4, n, p=[0.5, 0.25, 0.2, 0.05])
        ndc = rng.poisson(dontcare_per_frame)
        x1 = rng.uniform(0, _IMG_W - 60, ndc)
        y1 = rng.uniform(120, _IMG_H - 40, ndc)
        dc_box = np.stack([x1, y1, x1 + rng.uniform(10, 120, ndc),
                           y1 + rng.uniform(8, 50, ndc)], 1)
        gts.append(dict(
            name=np.array(names + ['DontCare'] * ndc),
            truncated=np.concatenate([trunc, -np.ones(ndc)]),
            occluded=np.concatenate([occ, -np.ones(ndc)]).astype(np.int64),
            alpha=np.concatenate([alpha, -10 * np.ones(ndc)]),
            bbox=np.concatenate([bbox, dc_box]).reshape(-1, 4),
            dimensions=np.concatenate([obj['dimensions'], -np.ones((ndc, 3))]).reshape(-1, 3),
            location=np.concatenate([obj['location'], -1000 * np.ones((ndc, 3))]).reshape(-1, 3),
            rotation_y=np.concatenate([obj['rotation_y'], -10 * np.ones(ndc)]),
            score=np.zeros(n + ndc)))

        # detections: noisy copies of detected objects ...
        keep = np.flatnonzero(rng.random(n) < recall)
        d_names = [names[i] if rng.random() < 0.9 else str(rng.choice(cls_names)) for i in keep]
        z = obj['location'][keep, 2]
        quality = rng.exponential(1.0, (len(keep), 1))  # per-object error scale
        loc = obj['location'][keep] + quality * rng.normal(0, 1, (len(keep), 3)) * np.stack(
            [0.005 * z, np.full_like(z, 0.05), 0.015 * z], 1)
        dims = obj['dimensions'][keep] * (1 + rng.normal(0, 0.06, (len(keep), 3)))
        ry = obj['rotation_y'][keep] + rng.normal(0, 0.15, len(keep))
        ry = ry + np.pi * (rng.random(len(keep)) < 0.05)
        score = 1 / (1 + np.exp(-rng.normal(1.5, 1.2, len(keep))))
        # ... plus false positives anywhere
        nfp = rng.poisson(fp_per_frame)
        fp_names = list(rng.choice(['Car', 'Pedestrian', 'Cyclist'], nfp, p=[0.7, 0.2, 0.1]))
        fp = _objects(rng, fp_names) if nfp else dict(
            dimensions=np.zeros((0, 3)), location=np.zeros((0, 3)), rotation_y=np.zeros(0))
        fp_score = 1 / (1 + np.exp(-rng.normal(-1.5, 1.2, nfp)))
        loc = np.concatenate([loc, fp['location']]).reshape(-1, 3)
        dims = np.abs(np.concatenate([dims, fp['dimensions']]).reshape(-1, 3))
        ry = np.arctan2(np.sin(np.concatenate([ry, fp['rotation_y']])),
                        np.cos(np.concatenate([ry, fp['rotation_y']])))
        # 2D boxes: the object's own box with pixel noise (true positives), projected (others)
        box = project_box_2d(loc, dims, ry)
        box[:len(keep)] = bbox[keep]
        box = box + rng.normal(0, 2.0, (len(loc), 4))
        box[:, 2:] = np.maximum(box[:, 2:], box[:, :2] + 1)
        all_names = d_names + fp_names
        order = rng.permutation(len(all_names))
        dts.append(dict(
            name=np.array(all_names)[order] if all_names else np.array([], dtype='<U10'),
            truncated=np.zeros(len(order)), occluded=np.zeros(len(order), dtype=np.int64),
            alpha=(ry - np.arctan2(loc[:, 0], loc[:, 2]))[order],
            bbox=box[order].reshape(-1, 4), dimensions=dims[order].reshape(-1, 3),
            location=loc[order].reshape(-1, 3), rotation_y=ry[order],
            score=np.concatenate([score, fp_score])[order]))
    return gts, dts
