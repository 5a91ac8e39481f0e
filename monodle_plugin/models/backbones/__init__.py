from .ultralytics_backbone import UltralyticsBackbone

__all__ = ['UltralyticsBackbone']
