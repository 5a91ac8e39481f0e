"""CPU KITTI evaluation (no numba.cuda): IO, exact rotated IoU, devkit matching, AP40/AP11."""
from .box_overlaps import frame_overlaps, image_box_iou
from .kitti_eval import (
    KITTI_CLASSES,
    compute_kitti_ap,
    format_kitti_table,
    kitti_aps_to_dict,
    kitti_eval,
)
from .kitti_io import (
    check_kitti_anno,
    empty_kitti_anno,
    load_kitti_dir,
    read_kitti_file,
    read_split_file,
    write_kitti_results,
)
from .rotated_iou import rotated_intersection_area, rotated_iou_bev

__all__ = [
    'KITTI_CLASSES', 'check_kitti_anno', 'compute_kitti_ap', 'empty_kitti_anno',
    'format_kitti_table', 'frame_overlaps', 'image_box_iou', 'kitti_aps_to_dict', 'kitti_eval',
    'load_kitti_dir', 'read_kitti_file', 'read_split_file', 'rotated_intersection_area',
    'rotated_iou_bev', 'write_kitti_results'
]
