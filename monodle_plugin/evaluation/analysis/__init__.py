"""Analysis on top of the KITTI evaluation: AP per distance, per image, oracle, shifting."""
from .distance_bins import (
    DEFAULT_DEPTH_EDGES,
    compute_ap_by_distance,
    count_objects_by_depth,
    depth_bin_name,
    depth_bins_from_edges,
    filter_annos_by_depth,
    filter_annos_by_score,
)

__all__ = [
    'DEFAULT_DEPTH_EDGES', 'compute_ap_by_distance', 'count_objects_by_depth', 'depth_bin_name',
    'depth_bins_from_edges', 'filter_annos_by_depth', 'filter_annos_by_score'
]
