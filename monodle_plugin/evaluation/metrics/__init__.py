from .kitti_ap40_metric import KittiAP40Metric

__all__ = ['KittiAP40Metric']
