"""CPU KITTI evaluation (no numba.cuda): exact rotated IoU, devkit matching, AP40/AP11.

The KITTI file readers / writers it uses live in :mod:`monodle_kitti.kitti_io`
(one home); they are re-exported here for convenience.
"""
from monodle_kitti.kitti_io import (
    check_kitti_anno,
    empty_kitti_anno,
    load_kitti_dir,
    read_kitti_file,
    read_split_file,
    write_kitti_results,
)

from .box_overlaps import frame_overlaps, image_box_iou
from .kitti_eval import (
    KITTI_EVAL_CLASSES,
    compute_kitti_ap,
    format_kitti_table,
    kitti_aps_to_dict,
    kitti_eval,
)
from .kitti_file_eval import evaluate_kitti_files
from .rotated_iou import rotated_intersection_area, rotated_iou_bev

__all__ = [
    'KITTI_EVAL_CLASSES', 'check_kitti_anno', 'compute_kitti_ap', 'empty_kitti_anno',
    'evaluate_kitti_files',
    'format_kitti_table', 'frame_overlaps', 'image_box_iou', 'kitti_aps_to_dict', 'kitti_eval',
    'load_kitti_dir', 'read_kitti_file', 'read_split_file', 'rotated_intersection_area',
    'rotated_iou_bev', 'write_kitti_results'
]
