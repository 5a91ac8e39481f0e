"""CPU KITTI evaluation (no numba.cuda): exact rotated IoU, devkit matching, AP40/AP11.

The KITTI file readers / writers it uses live in :mod:`monodle_kitti.kitti_io`
(one home: import them from there).
"""
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
    'KITTI_EVAL_CLASSES', 'compute_kitti_ap', 'evaluate_kitti_files', 'format_kitti_table',
    'frame_overlaps', 'image_box_iou', 'kitti_aps_to_dict', 'kitti_eval',
    'rotated_intersection_area', 'rotated_iou_bev'
]
