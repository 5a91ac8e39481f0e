"""Generate Depth Anything 3 metric-depth pseudo-labels for a KITTI split.

Usage:
    python tools/dataset_converters/generate_da3_depth.py data/KITTI --split trainval \
        --model /path/to/DA3METRIC-LARGE [--out data/KITTI/DA3_depth_results] \
        [--process-res 504] [--batch-size 1] [--device cuda]

Writes ``<out>/<id>.npz`` per frame of ``ImageSets/<split>.txt`` (images from
``training/image_2`` or, for ``test``, ``testing/image_2``) with:

- ``depth``: float32 metres, **raw image size** (H x W), resized bilinearly from DA3's
  processing resolution (all DA3 pixels are valid, so no validity handling is needed here);
- ``model`` (str), ``model_kind`` ('metric' or 'nested'), ``process_res`` (int),
  ``processing_shape`` (h, w), ``raw_shape`` (H, W), ``focal_factor`` (float).

Units. DA3's metric model (``DA3Metric-*``) predicts focal-normalised depth:
``metres = output * f / 300`` with ``f = (fx + fy) / 2`` of the image **at the processing
resolution**, i.e. P2's ``fx * w / W`` and ``fy * h / H`` (``focal_factor`` = f / 300, about 0.98
for KITTI at 504 px). The nested models (``DA3Nested-*``) output metres (``focal_factor`` = 1).
Relative-depth models are refused.

The model: ``depth-anything-3`` (PyPI) is an optional extra, imported only here; ``--model`` is
a local folder or file of weights, or a hub id, which is downloaded only with
``--allow-download``. The run is resumable: finished files are skipped (each file is written to
a temporary name and renamed, so an interrupted run never leaves a truncated ``.npz``).

Batching: DA3's ``inference`` treats the images of one call as views of one scene, and its
any-view models let those views attend to each other. ``--batch-size 1`` (default) therefore
sends one frame per call, always correct; ``> 1`` is refused for nested models, and for metric
models check on a few frames that batch 1 and batch N give the same maps before relying on it.
"""
from __future__ import annotations

import os
import os.path as osp
import sys
from typing import Any, Sequence

import cv2
import numpy as np
import torch
from mmengine.utils import ProgressBar

from ..utils.cli import UserError
from .kitti_io import read_calib, read_split, split_folder

METRIC_FOCAL_BASE = 300.0  # DA3Metric's canonical focal length (pixels)
DEFAULT_MODEL = 'depth-anything/DA3METRIC-LARGE'


def model_kind(name: str, override: str = 'auto') -> str:
    """'metric' or 'nested' from the model name (or ``override``); relative models raise."""
    if override != 'auto':
        return override
    lowered = osp.basename(osp.normpath(name)).lower()
    if 'nested' in lowered:
        return 'nested'
    if 'metric' in lowered:
        return 'metric'
    raise ValueError(f'cannot tell from {name!r} whether it is a DA3 metric or nested model '
                     f'(relative-depth models give no metres); pass --model-kind metric|nested')


def focal_factor(cam2img: np.ndarray, raw_hw: Sequence[int], proc_hw: Sequence[int]) -> float:
    """``((fx * w / W) + (fy * h / H)) / 2 / 300``: DA3Metric output -> metres."""
    fx = float(cam2img[0, 0]) * proc_hw[1] / raw_hw[1]
    fy = float(cam2img[1, 1]) * proc_hw[0] / raw_hw[0]
    return (fx + fy) / 2.0 / METRIC_FOCAL_BASE


def import_da3() -> Any:
    """``depth_anything_3.api.DepthAnything3`` of the optional extra (``EXTRAS=da3 make env``).

    The package's import path pulls in moviepy (for its video export, unused here), which then
    wants imageio-ffmpeg's 165 MB binary unless ``FFMPEG_BINARY`` says otherwise: 'auto-detect'
    is set when the variable is unset (a system ffmpeg is used if there is one).

    Raises:
        UserError: the extra is not installed (one line naming the fix).
    """
    os.environ.setdefault('FFMPEG_BINARY', 'auto-detect')
    try:
        from depth_anything_3.api import DepthAnything3
    except ImportError as err:
        raise UserError('tools/dataset_converters/generate_da3_depth.py needs the optional '
                        'extra `da3` (EXTRAS=da3 make env: depth-anything-3==0.1.1 and the '
                        'pinned part of its import path, requirements/extras/da3*.txt); '
                        f'import failed: {err}') from err
    return DepthAnything3


def load_da3(model: str, device: str, allow_download: bool) -> Any:
    """Build ``depth_anything_3.api.DepthAnything3`` from a local path or (if allowed) the hub."""
    DepthAnything3 = import_da3()
    if not osp.exists(model) and not allow_download:
        raise UserError(f'--model {model!r} is not a local path; download the weights and pass '
                        'their folder, or add --allow-download to fetch them from the hub')
    net = DepthAnything3.from_pretrained(model)
    return net.to(device).eval()


def _as_numpy(value: Any) -> np.ndarray:
    if hasattr(value, 'detach'):
        value = value.detach().float().cpu().numpy()
    return np.asarray(value, dtype=np.float32)


def save_npz(path: str, **arrays: Any) -> None:
    """Write ``path`` atomically (temporary file + rename)."""
    tmp = f'{path}.tmp'
    with open(tmp, 'wb') as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)


def generate(data_root: str, split: str, out_dir: str, model: Any, model_name: str, kind: str,
             process_res: int = 504, batch_size: int = 1, overwrite: bool = False) -> dict:
    """Run ``model.inference(list_of_image_paths, process_res=...)`` over a split.

    ``model`` is anything with DA3's ``inference`` API returning an object whose ``depth`` is
    (N, h, w) at the processing resolution. Returns counts ``{'written', 'skipped'}``.
    """
    if kind not in ('metric', 'nested'):
        raise ValueError(f'kind must be metric or nested, got {kind!r}')
    if batch_size < 1:
        raise ValueError(f'batch_size must be >= 1, got {batch_size}')
    if batch_size > 1 and kind == 'nested':
        raise ValueError('--batch-size > 1 would let the frames of one call attend to each other '
                         'in a nested (any-view) model; use --batch-size 1')
    split_dir = split_folder(data_root, split)
    ids = read_split(data_root, split)
    os.makedirs(out_dir, exist_ok=True)
    todo = [i for i in ids if overwrite or not osp.exists(osp.join(out_dir, f'{i}.npz'))]
    counts = dict(written=0, skipped=len(ids) - len(todo))
    if counts['skipped']:
        print(f'{counts["skipped"]} of {len(ids)} frames already done in {out_dir} (skipped)')
    if not todo:
        return counts
    bar = ProgressBar(len(todo))
    for start in range(0, len(todo), batch_size):
        chunk = todo[start:start + batch_size]
        paths = [osp.join(split_dir, 'image_2', f'{i}.png') for i in chunk]
        for p in paths:
            if not osp.isfile(p):
                raise FileNotFoundError(f'image {p} listed in ImageSets/{split}.txt not found')
        with torch.no_grad():
            prediction = model.inference(paths, process_res=process_res)
        depths = _as_numpy(prediction.depth)
        if depths.ndim != 3 or depths.shape[0] != len(chunk):
            raise ValueError(f'DA3 returned depth of shape {depths.shape} for {len(chunk)} '
                             'images, expected (N, h, w)')
        for sample_id, path, depth in zip(chunk, paths, depths):
            image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
            if image is None:
                raise OSError(f'cannot read image {path}')
            raw_hw = image.shape[:2]
            proc_hw = depth.shape
            factor = 1.0
            if kind == 'metric':
                cam2img = read_calib(osp.join(split_dir, 'calib', f'{sample_id}.txt'))['cam2img']
                factor = focal_factor(cam2img, raw_hw, proc_hw)
            metres = cv2.resize(depth * np.float32(factor), (raw_hw[1], raw_hw[0]),
                                interpolation=cv2.INTER_LINEAR)
            save_npz(osp.join(out_dir, f'{sample_id}.npz'), depth=metres.astype(np.float32),
                     model=np.array(model_name), model_kind=np.array(kind),
                     process_res=np.array(process_res), processing_shape=np.array(proc_hw),
                     raw_shape=np.array(raw_hw), focal_factor=np.array(factor))
            counts['written'] += 1
            bar.update()
    sys.stdout.write('\n')
    return counts
