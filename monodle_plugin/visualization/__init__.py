"""Pictures, as ``mmdet3d/visualization``: not imported by ``monodle_plugin/__init__`` (nothing
registers here).

- :mod:`monodle_kitti.mono3d_drawing` (torch-free, so that ``tools/deployment/ort_infer.py``
  draws without torch): projected 3D boxes + bird's-eye view, the drawing of ``tools/demo.py``,
  ``MonoDLEInferencer``, ``tools/test.py --show-dir`` and ``ort_infer.py --draw-dir``;
- :mod:`.analysis_drawing`: ground truth vs prediction, dense maps
  (``tools/analysis_tools/visualize.py``);
- :mod:`.browse_dataset`: a training sample after the pipeline (``tools/misc/browse_dataset.py``).
"""
