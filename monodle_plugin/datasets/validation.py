"""Frame checks run before training: images decode, sizes fit calib and boxes, depth files read.

Two depths, both run over every frame in a thread pool:

- **quick** (``MonoDLEKittiDataset``'s default, ``validate='quick'``): each file exists and is
  non-empty; a PNG ends with its IEND chunk and a JPEG with its EOI marker (a truncated copy
  does not); the image size read from its header fits its calibration (P2, principal point)
  and its 2D boxes; a teacher ``.npz`` opens as a zip archive, holds the key ``depth`` and its
  array header gives a usable shape. Headers and trailers only: about a millisecond per frame
  (docs/en/errors.md).
- **full** (``tools/misc/check_kitti_layout.py``, ``validate=True``): the whole image decoded
  and every depth map read and judged (all NaN, no valid pixel, mostly invalid).

So a truncated PNG or a resized image stops the run before the first iteration, not hours in.

Each ``check_*`` function returns a list of problem strings, each naming its file (empty: ok).
"""
from __future__ import annotations

import os
import os.path as osp
import struct
import zipfile
from functools import partial
from typing import Iterable, Optional, Sequence

import numpy as np

from monodle_kitti.intrinsics import PRINCIPAL_POINT_TOLERANCE, p2_problems

from .kitti_io import SPLIT_FOLDERS, KittiFormatError, read_split_file, split_file_path

#: Pixels a 2D box may reach past the image border (KITTI clips boxes to [0, W-1]).
BOX_MARGIN_PX = 2.0


def decode_image(path: str) -> tuple[Optional[tuple[int, int]], Optional[str]]:
    """Decode the whole image (not only its header) with OpenCV, as training reads it.

    Returns ``((H, W), None)`` or ``(None, problem)``; a zero-byte, truncated or non-image file
    is a problem. (Not PIL: once ultralytics is imported it patches ``PIL.Image.open`` to try
    installing an extra package on an unidentified file.)
    """
    import cv2
    if not osp.isfile(path):
        return None, f'{path}: image not found'
    if osp.getsize(path) == 0:
        return None, f'{path}: image is empty (0 bytes)'
    try:
        with open(path, 'rb') as f:
            img = cv2.imdecode(np.frombuffer(f.read(), np.uint8), cv2.IMREAD_COLOR)
    except (OSError, cv2.error) as err:
        return None, f'{path}: image cannot be read ({" ".join(str(err).split())})'
    if img is None:
        return None, f'{path}: image cannot be decoded (truncated or not an image)'
    return img.shape[:2], None


#: the 8-byte PNG signature and the 12-byte IEND chunk every complete PNG ends with
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
PNG_IEND = b'\x00\x00\x00\x00IEND\xaeB`\x82'
#: JPEG start-of-frame markers (they carry the image size); C4 / C8 / CC are not frames
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def image_header(path: str) -> tuple[Optional[tuple[int, int]], Optional[str]]:
    """``((H, W), None)`` from a PNG / JPEG header, or ``(None, problem)``, without decoding.

    A problem: missing or empty file, a PNG not ending with its IEND chunk or a JPEG without
    its EOI marker in the last 32 bytes (a truncated copy), an unreadable header, another
    format. Reads the first 32 bytes, the last 32 and (JPEG) the segment headers up to the
    frame header.
    """
    if not osp.isfile(path):
        return None, f'{path}: image not found'
    size = osp.getsize(path)
    if size == 0:
        return None, f'{path}: image is empty (0 bytes)'
    truncated = f'{path}: image is truncated ({size} bytes: '
    with open(path, 'rb') as f:
        head = f.read(32)
        f.seek(max(0, size - 32))
        tail = f.read(32)
        if head.startswith(PNG_SIGNATURE):
            if len(head) < 24 or head[12:16] != b'IHDR':
                return None, f'{path}: PNG header unreadable (no IHDR chunk)'
            w, h = struct.unpack('>II', head[16:24])
            if not tail.endswith(PNG_IEND):
                return None, truncated + 'no IEND chunk at the end); copy it again'
            return (h, w), None
        if head[:2] == b'\xff\xd8':
            if b'\xff\xd9' not in tail:
                return None, truncated + 'no JPEG EOI marker at the end); copy it again'
            pos = 2
            while pos + 4 <= size:
                f.seek(pos)
                seg = f.read(9)
                if len(seg) < 4 or seg[0] != 0xFF:
                    break
                marker = seg[1]
                if marker == 0xFF:  # fill byte
                    pos += 1
                    continue
                if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # no length
                    pos += 2
                    continue
                if marker in _JPEG_SOF and len(seg) == 9:
                    h, w = struct.unpack('>HH', seg[5:9])
                    return (h, w), None
                pos += 2 + ((seg[2] << 8) | seg[3])
            return None, f'{path}: JPEG header unreadable (no frame header)'
    return None, f'{path}: not a PNG or JPEG image'


def depth_header_problems(loader, path: str, raw_hw: tuple[int, int]) -> list[str]:
    """Quick check of one teacher ``.npz`` (no array read): a complete zip archive (its
    directory sits at the end: a truncated file has none) holding ``loader.key`` with a 2D
    numeric array whose shape ``LoadDA3Depth`` accepts for an image of ``raw_hw``."""
    if not osp.isfile(path):
        return [f'{path}: depth file not found']
    if osp.getsize(path) == 0:
        return [f'{path}: depth file is empty (0 bytes)']
    name = f'{loader.key}.npy'
    try:
        with zipfile.ZipFile(path) as archive:
            if name not in archive.namelist():
                keys = sorted(n[:-4] for n in archive.namelist() if n.endswith('.npy'))
                return [f'{path}: depth file has no key {loader.key!r} (keys: {keys})']
            with archive.open(name) as f:
                version = np.lib.format.read_magic(f)
                read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                        else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read(f)
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        return [f'{path}: depth file unreadable (truncated or not an .npz archive: '
                f'{" ".join(str(err).split())})']
    if len(shape) == 3 and 1 in (shape[0], shape[-1]):
        shape = shape[:2] if shape[-1] == 1 else shape[1:]
    if len(shape) != 2 or not np.issubdtype(dtype, np.number):
        return [f'{path}[{loader.key!r}] must be a 2D numeric (H, W) array, got shape {shape} '
                f'dtype {dtype}']
    try:
        loader.check_size(shape, raw_hw, path)
    except ValueError as err:
        return [' '.join(str(err).split())]
    return []


def check_image_geometry(img_path: str, hw: tuple[int, int], cam2img: np.ndarray,
                         calib_path: str, instances: Sequence[dict] = (),
                         label_path: Optional[str] = None) -> list[str]:
    """Image size against its calibration (:func:`~monodle_kitti.numpy_runtime.
    p2_problems`: finite P2, positive focal lengths, principal point near the centre) and 2D
    boxes.

    Args:
        img_path: named in the messages.
        hw: decoded image (H, W) pixels.
        cam2img: P2 (3x4 or 4x4).
        calib_path, label_path: named in the messages.
        instances: label instances (``name``, ``bbox`` [x1, y1, x2, y2] raw pixels).
    """
    h, w = hw
    problems = p2_problems(cam2img, hw, calib_path, img_path)
    for k, ins in enumerate(instances):
        if ins.get('name') == 'DontCare':
            continue
        x1, y1, x2, y2 = (float(v) for v in ins['bbox'])
        if x2 < x1 or y2 < y1:
            problems.append(f'{label_path}: object {k} ({ins.get("name")}) has an inverted 2D '
                            f'box [{x1}, {y1}, {x2}, {y2}]')
        elif (x1 < -BOX_MARGIN_PX or y1 < -BOX_MARGIN_PX or x2 > w - 1 + BOX_MARGIN_PX
              or y2 > h - 1 + BOX_MARGIN_PX):
            problems.append(f'{label_path}: object {k} ({ins.get("name")}) 2D box '
                            f'[{x1}, {y1}, {x2}, {y2}] lies outside the {w}x{h} image '
                            f'{img_path} (image resized or labels of another frame)')
    return problems


def check_depth_file(loader, path: str, raw_hw: tuple[int, int],
                     max_invalid_fraction: float = 0.99) -> tuple[list[str], dict]:
    """Read one teacher depth file as training does and judge its valid pixels.

    Args:
        loader: a ``LoadDA3Depth`` (its ``key``, ``min_depth``, ``max_depth``, ``resize``).
        path: the ``.npz`` file.
        raw_hw: the image (H, W).
        max_invalid_fraction: more invalid pixels than this is a problem ("mostly invalid").

    Returns:
        (problems, stats) with stats ``nan_fraction``, ``nonpositive_fraction``,
        ``invalid_fraction``, ``shape`` when the file could be read.
    """
    from .transforms.load_da3_depth import depth_validity
    if not osp.isfile(path):
        return [f'{path}: depth file not found'], {}
    try:
        depth = loader.read_depth(path)
    except (KeyError, ValueError, OSError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        return [f'{path}: depth file unreadable ({" ".join(str(msg).split())})'], {}
    with np.errstate(invalid='ignore'):
        stats = dict(shape=depth.shape, nan_fraction=float(np.isnan(depth).mean()),
                     nonpositive_fraction=float((depth <= 0).mean()))
    valid = depth_validity(depth, loader.min_depth, loader.max_depth)
    stats['invalid_fraction'] = float(1.0 - valid.mean()) if valid.size else 1.0
    problems = []
    if stats['nan_fraction'] == 1.0:
        problems.append(f'{path}: depth map is all NaN')
    elif not np.isfinite(depth).any():
        problems.append(f'{path}: depth map has no finite value')
    elif stats['nonpositive_fraction'] == 1.0 or not valid.any():
        problems.append(f'{path}: depth map has no valid pixel (all <= {loader.min_depth} m'
                        f'{"" if loader.max_depth is None else f" or > {loader.max_depth} m"})')
    elif stats['invalid_fraction'] > max_invalid_fraction:
        pct = 100 * stats['invalid_fraction']
        problems.append(f'{path}: depth map is mostly invalid ({pct:.1f} % invalid > '
                        f'{100 * max_invalid_fraction:.1f} %, --max-invalid-fraction)')
    try:
        loader.to_raw_size(depth, valid, tuple(raw_hw), path)
    except ValueError as err:
        problems.append(' '.join(str(err).split()))
    return problems, stats


def _one_frame(frame: dict, depth_loader, max_invalid_fraction: float,
               full: bool = True) -> list[str]:
    hw, problem = (decode_image if full else image_header)(frame['img_path'])
    if problem:
        return [problem]
    problems = check_image_geometry(frame['img_path'], hw, np.asarray(frame['cam2img']),
                                    frame.get('calib_path'), frame.get('instances', ()),
                                    frame.get('label_path'))
    if depth_loader is not None:
        path = depth_loader.depth_path(dict(sample_id=frame.get('sample_id'),
                                            img_path=frame['img_path']))
        if not (depth_loader.on_missing == 'skip' and not osp.isfile(path)):
            problems += (check_depth_file(depth_loader, path, hw, max_invalid_fraction)[0]
                         if full else depth_header_problems(depth_loader, path, hw))
    return problems


def _map_in_threads(fn, items: Sequence, num_threads: int | None = None,
                    progress: bool = False) -> list:
    """``[fn(item) for item in items]`` in a thread pool (PNG and zlib decoding release the GIL;
    default ``min(8, cpu count)`` threads), in input order; ``progress``: mmengine's
    ``ProgressBar`` on stderr (the report on stdout stays clean)."""
    import sys
    from concurrent.futures import ThreadPoolExecutor
    items = list(items)
    bar = None
    if progress and items:
        from mmengine.utils import ProgressBar
        bar = ProgressBar(len(items), file=sys.stderr)
    results = []
    workers = num_threads or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for result in pool.map(fn, items):
            results.append(result)
            if bar is not None:
                bar.update()
    if bar is not None:
        sys.stderr.write('\n')
    return results


def validate_frames(frames: Iterable[dict], depth_loader=None,
                    max_invalid_fraction: float = 0.99, num_threads: int | None = None,
                    full: bool = True) -> list[str]:
    """Every problem of the frames (the dataset's ``data_info`` dicts), in frame order.

    Args:
        frames: dicts with ``img_path``, ``cam2img``, ``calib_path``, ``label_path``,
            ``instances`` (and ``sample_id`` for the depth file).
        depth_loader: a ``LoadDA3Depth`` to check each frame's depth file too (None: no depth).
        max_invalid_fraction: see :func:`check_depth_file`.
        num_threads: decoding threads; default ``min(8, cpu count)``.
        full: decode every image and read every depth map (False: the quick check of the
            module docstring, headers and trailers only).
    """
    per_frame = _map_in_threads(
        lambda f: _one_frame(f, depth_loader, max_invalid_fraction, full), frames, num_threads)
    return [p for problems in per_frame for p in problems]


def _frame_problems(base: str, sample_id: str, labelled: bool, depth_loader,
                    max_invalid_fraction: float) -> list[str]:
    """Content problems of one frame (files known to exist)."""
    from .kitti_io import read_calib, read_label
    frame = dict(sample_id=sample_id, img_path=osp.join(base, 'image_2', f'{sample_id}.png'),
                 calib_path=osp.join(base, 'calib', f'{sample_id}.txt'),
                 label_path=osp.join(base, 'label_2', f'{sample_id}.txt') if labelled else None)
    try:
        frame['cam2img'] = read_calib(frame['calib_path'])['cam2img']
        frame['instances'] = read_label(frame['label_path']) if labelled else []
    except KittiFormatError as err:
        return [str(err)]
    return _one_frame(frame, depth_loader, max_invalid_fraction)


def check_kitti_layout(root: str, depth_dir: str | None = None, content: bool = True,
                       max_invalid_fraction: float = 0.99) -> int:
    """Check a KITTI folder (``tools/misc/check_kitti_layout.py``); prints every problem and
    returns their number.

    Args:
        root: KITTI root (``ImageSets/``, ``training/``, ``testing/``).
        depth_dir: teacher depth folder (relative to ``root`` or absolute), or None.
        content: decode / parse every file (False: existence only).
        max_invalid_fraction: see :func:`check_depth_file`.
    """
    problems = 0
    image_sets = osp.join(root, 'ImageSets')
    if not osp.isdir(image_sets):
        print(f'missing {image_sets}/ (copy data/KITTI/ImageSets from this repository)')
        return 1
    depth_loader = None
    if depth_dir and content:
        from .transforms.load_da3_depth import LoadDA3Depth
        ddir = depth_dir if osp.isabs(depth_dir) else osp.join(root, depth_dir)
        depth_loader = LoadDA3Depth(depth_dir=osp.abspath(ddir))
    checked: dict[tuple[str, str], list[str]] = {}
    for split, subset in SPLIT_FOLDERS.items():
        split_file = split_file_path(root, split)
        if not osp.exists(split_file):
            print(f'{split_file}: not found (skipped)')
            continue
        try:
            ids = read_split_file(split_file)
        except KittiFormatError as err:
            print(err)
            problems += 1
            continue
        folders = {'image_2': '.png', 'calib': '.txt'}
        if subset == 'training':
            folders['label_2'] = '.txt'
        base = osp.join(root, subset)
        if not osp.isdir(base):
            print(f'{split}: {len(ids)} ids, but {base}/ does not exist')
            problems += 1
            continue
        report = []
        incomplete = set()
        for folder, ext in folders.items():
            present = set(os.listdir(osp.join(base, folder))) if osp.isdir(
                osp.join(base, folder)) else set()
            missing = [i for i in ids if i + ext not in present]
            incomplete.update(missing)
            if missing:
                problems += 1
                report.append(f'{len(missing)} missing in {folder}/ (first: {missing[0]}{ext})')
        if depth_dir and subset == 'training':
            ddir = depth_dir if osp.isabs(depth_dir) else osp.join(root, depth_dir)
            present = set(os.listdir(ddir)) if osp.isdir(ddir) else set()
            missing = [i for i in ids if i + '.npz' not in present]
            incomplete.update(missing)
            if missing:
                problems += 1
                report.append(f'{len(missing)} missing in {ddir}/ (first: {missing[0]}.npz)')
        bad_files = 0
        if content:
            todo = [i for i in ids if i not in incomplete and (subset, i) not in checked]
            labelled = subset == 'training'
            check = partial(_frame_problems, base, labelled=labelled,
                            depth_loader=depth_loader if labelled else None,
                            max_invalid_fraction=max_invalid_fraction)
            for sample_id, lines in zip(todo, _map_in_threads(check, todo, progress=True)):
                checked[(subset, sample_id)] = lines
                for line in lines:
                    print(f'  BAD {line}')
            bad_files = sum(len(checked[(subset, i)]) for i in ids if i not in incomplete)
            if bad_files:
                problems += 1
                report.append(f'{bad_files} bad file(s) (BAD lines above)')
        print(f'{split:9s} {len(ids):5d} ids: ' + ('; '.join(report) if report else 'complete'))
    return problems


def format_problems(problems: Sequence[str], source: str, shown: int = 20) -> str:
    """One message listing the problems (the first ``shown``)."""
    more = f' ... and {len(problems) - shown} more' if len(problems) > shown else ''
    return (f'{source}: {len(problems)} bad file(s): ' + ' | '.join(problems[:shown]) + more
            + ' (run tools/misc/check_kitti_layout.py for the full list)')


__all__ = ['BOX_MARGIN_PX', 'PRINCIPAL_POINT_TOLERANCE', 'check_depth_file',
           'check_image_geometry', 'check_kitti_layout', 'decode_image',
           'depth_header_problems', 'format_problems', 'image_header', 'validate_frames']
