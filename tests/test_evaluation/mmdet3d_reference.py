"""Run mmdet3d's own ``kitti_eval`` on the CPU, for cross-checking our evaluation.

mmdet3d's rotated IoU is a ``numba.cuda`` kernel; without a GPU it only runs in numba's CUDA
simulator, which must be switched on (``NUMBA_ENABLE_CUDASIM=1``) before numba is imported.
So the reference runs in a fresh Python process. It is slow (the simulator runs every CUDA
thread in Python): keep the inputs small (tens to a few hundred frames).

The ``kitti_utils`` package is loaded straight from mmdet3d's installed files, without
importing ``mmdet3d`` itself (which needs a working mmcv).
"""
import importlib.util
import os
import os.path as osp
import pickle
import subprocess
import sys
import tempfile
from typing import Dict, Sequence, Tuple

import numpy as np

from monodle_plugin.evaluation.functional.kitti_eval import KITTI_EVAL_CLASSES

_SCRIPT = r'''
import importlib.util, pickle, sys, time
import numpy as np
pkg_dir, in_path, out_path, warmup_frames = sys.argv[1:5]
spec = importlib.util.spec_from_file_location(
    'mmdet3d_kitti_utils', pkg_dir + '/__init__.py', submodule_search_locations=[pkg_dir])
mod = importlib.util.module_from_spec(spec)
sys.modules['mmdet3d_kitti_utils'] = mod
spec.loader.exec_module(mod)
from mmdet3d_kitti_utils import eval as ke
with open(in_path, 'rb') as f:
    gt_annos, dt_annos, classes, eval_types = pickle.load(f)
t0 = time.perf_counter()
# warm-up on a few frames: numba compiles mmdet3d's CPU jit functions outside the timing
if int(warmup_frames):
    n = int(warmup_frames)
    ke.kitti_eval(gt_annos[:n], dt_annos[:n], list(classes), eval_types=list(eval_types))
warmup = time.perf_counter() - t0
t0 = time.perf_counter()
_, ret = ke.kitti_eval(gt_annos, dt_annos, list(classes), eval_types=list(eval_types))
seconds = time.perf_counter() - t0
# AOS is only printed by kitti_eval; recompute the arrays through do_eval to return them
name_to_class = {'Car': 0, 'Pedestrian': 1, 'Cyclist': 2}
cls_idx = [name_to_class[c] for c in classes]
o7 = np.array([[0.7, 0.5, 0.5, 0.7, 0.5]] * 3)
o5 = np.array([[0.7, 0.5, 0.5, 0.7, 0.5], [0.5, 0.25, 0.25, 0.5, 0.25],
               [0.5, 0.25, 0.25, 0.5, 0.25]])
mo = np.stack([o7, o5], 0)[:, :, cls_idx]
aos = {}
if 'aos' in eval_types:
    r = ke.do_eval(gt_annos, dt_annos, cls_idx, mo, ['bbox', 'aos'])
    aos = {'AP11_AOS': r[3], 'AP40_AOS': r[7]}
with open(out_path, 'wb') as f:
    pickle.dump(({k: float(v) for k, v in ret.items()}, aos, seconds, warmup), f)
'''


def mmdet3d_kitti_utils_dir() -> str:
    """Folder of mmdet3d's ``evaluation/functional/kitti_utils`` (without importing mmdet3d)."""
    spec = importlib.util.find_spec('mmdet3d')
    if spec is None or not spec.submodule_search_locations:
        raise ImportError('mmdet3d is not installed; it is needed only for the reference check')
    root = list(spec.submodule_search_locations)[0]
    path = osp.join(root, 'evaluation', 'functional', 'kitti_utils')
    if not osp.isfile(osp.join(path, 'eval.py')):
        raise ImportError(f'mmdet3d kitti_utils not found under {path}')
    return path


def run_mmdet3d_kitti_eval(gt_annos: Sequence[dict], dt_annos: Sequence[dict],
                           classes: Sequence[str] = tuple(KITTI_EVAL_CLASSES),
                           eval_types: Sequence[str] = ('bbox', 'bev', '3d'),
                           with_aos: bool = True, warmup: bool = True,
                           timeout: float = 3600.0
                           ) -> Tuple[Dict[str, float], Dict[str, np.ndarray], float, float]:
    """mmdet3d's ``kitti_eval`` result dict, its AOS arrays and its run times (seconds).

    Args:
        with_aos: also return ``{'AP11_AOS': (M, 3, 2), 'AP40_AOS': ...}`` via ``do_eval``.
        warmup: first run on two frames, so that the timing excludes numba compilation.

    Returns:
        (ret_dict, aos_arrays, seconds of ``kitti_eval`` on all frames, seconds of the warm-up
        call (numba compilation of mmdet3d's jit code; 0 without warm-up)).
    """
    pkg_dir = mmdet3d_kitti_utils_dir()
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM='1')
    with tempfile.TemporaryDirectory() as tmp:
        in_path = osp.join(tmp, 'in.pkl')
        out_path = osp.join(tmp, 'out.pkl')
        with open(in_path, 'wb') as f:
            # kitti_eval appends 'aos' itself when alphas are valid; pass the types without it
            pickle.dump((list(gt_annos), list(dt_annos), list(classes), list(eval_types)), f)
        script = _SCRIPT.replace("if 'aos' in eval_types:", f'if {with_aos!r}:')
        proc = subprocess.run([sys.executable, '-c', script, pkg_dir, in_path, out_path,
                               str(2 if warmup else 0)],
                              env=env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f'mmdet3d kitti_eval failed:\n{proc.stderr[-4000:]}')
        with open(out_path, 'rb') as f:
            ret, aos, seconds, warmup = pickle.load(f)
    return ret, aos, seconds, warmup
