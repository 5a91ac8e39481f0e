"""Deployment: ONNX export (``onnx_export``, needs torch) and a numpy + OpenCV runtime
(``numpy_runtime``, needs neither torch nor the OpenMMLab stack)."""
