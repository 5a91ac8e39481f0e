"""Evaluate a folder of KITTI result files against label files (what tools/kitti_eval.py runs)."""
import os.path as osp
import time
from typing import Callable, Dict, Optional, Sequence, Tuple

from .kitti_eval import (
    KITTI_EVAL_CLASSES,
    compute_kitti_ap,
    format_kitti_table,
    kitti_aps_to_dict,
)
from .kitti_io import load_kitti_dir, read_split_file


def evaluate_kitti_files(gt_dir: str, pred_dir: str, split_file: str,
                         classes: Optional[Sequence[str]] = None,
                         eval_types: Sequence[str] = ('bbox', 'bev', '3d', 'aos'),
                         missing_as_empty: bool = False,
                         score_thr: Optional[float] = None,
                         before_eval: Optional[Callable[[], None]] = None
                         ) -> Tuple[Dict[str, float], dict]:
    """AP40 / AP11 of ``<pred_dir>/<id>.txt`` against ``<gt_dir>/<id>.txt`` for the split's ids.

    Args:
        gt_dir: folder of KITTI label files (``training/label_2``).
        pred_dir: folder of KITTI result files (16 fields, test-server format).
        split_file: one id per line (``ImageSets/val.txt``).
        classes: classes to evaluate; default :data:`KITTI_EVAL_CLASSES`.
        eval_types: overlap types (``bbox``, ``bev``, ``3d``) and ``aos``.
        missing_as_empty: an id without result file counts as "no detections" (default: an
            error, as the KITTI devkit).
        score_thr: drop detections with a lower score before evaluating (None: keep all).
        before_eval: called once the files are read, before evaluating (``tools/kitti_eval.py``
            finishes its parallel numba compilation there: ``kitti_eval_jit``); its time
            counts as evaluation time.

    Returns:
        ``(aps, report)``: the flat dict with mmdet3d's ``kitti_eval`` keys
        (``KITTI/Car_3D_AP40_moderate_strict``, ... in percent), and ``report`` with ``table``
        (printable), ``images``, ``label_lines``, ``detections``, ``read_s``, ``eval_s``, and
        the evaluated ``gt_annos`` / ``dt_annos`` (per image, split order).

    Raises:
        FileNotFoundError: a folder, the split file, a label file or (without
            ``missing_as_empty``) a result file is missing; the message names it.
        KittiFormatError / ValueError: a bad line or value, file (and line) named.
    """
    t0 = time.perf_counter()
    classes = list(KITTI_EVAL_CLASSES) if classes is None else list(classes)
    if not osp.isdir(gt_dir):
        raise FileNotFoundError(f'label folder not found: {gt_dir}')
    if not osp.isdir(pred_dir):
        raise FileNotFoundError(f'result folder not found: {pred_dir}')
    ids = read_split_file(split_file)
    missing_gt = [i for i in ids if not osp.isfile(osp.join(gt_dir, f'{i}.txt'))]
    with_pred = [i for i in missing_gt if osp.isfile(osp.join(pred_dir, f'{i}.txt'))]
    if with_pred:
        raise FileNotFoundError(
            f'{len(with_pred)} result file(s) without label file, e.g. '
            f'{osp.join(pred_dir, with_pred[0] + ".txt")} has no '
            f'{osp.join(gt_dir, with_pred[0] + ".txt")}')
    if missing_gt:
        raise FileNotFoundError(f'{len(missing_gt)} split id(s) without label file, e.g. '
                                f'{osp.join(gt_dir, missing_gt[0] + ".txt")}')
    gt_annos = load_kitti_dir(gt_dir, ids, is_result=False)
    dt_annos = load_kitti_dir(pred_dir, ids, is_result=True, missing_ok=missing_as_empty)
    if score_thr is not None:
        from .distance_bins import filter_annos_by_score  # distance_bins imports us
        dt_annos = filter_annos_by_score(dt_annos, score_thr)
    t_read = time.perf_counter()
    if before_eval is not None:
        before_eval()
    overlap_types = [t for t in eval_types if t != 'aos']
    aps, _ = compute_kitti_ap(gt_annos, dt_annos, classes, overlap_types,
                              with_aos='aos' in eval_types)
    t_eval = time.perf_counter()
    report = dict(table=format_kitti_table(aps, classes), images=len(ids),
                  label_lines=sum(len(a['name']) for a in gt_annos),
                  detections=sum(len(a['name']) for a in dt_annos),
                  read_s=t_read - t0, eval_s=t_eval - t_read, gt_annos=gt_annos,
                  dt_annos=dt_annos)
    return kitti_aps_to_dict(aps, classes), report
