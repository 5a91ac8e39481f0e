"""KITTI files and their CPU evaluation, importable without torch: numpy + numba only.

The torch-free part of monodle_plugin, shipped in the same distribution. Importing
``monodle_plugin`` registers every component into mmdet3d's registries, which imports torch /
mmengine / mmdet3d (seconds of CPU); importing a module of this package imports none of them,
so ``tools/kitti_eval.py`` starts quickly (timings: docs/en/training_testing.md). One home each:

- :mod:`.classes`: ``MONODLE_CLASSES`` (label order), ``KITTI_CLASSES`` (all label names).
- :mod:`.camera`: P2 padding, camera -> image projection, 3D box corners.
- :mod:`.kitti_io`: split, calibration, label and result files.
- :mod:`.rotated_iou`, :mod:`.box_overlaps`, :mod:`.kitti_matching`, :mod:`.kitti_eval`:
  exact rotated IoU, devkit matching, AP40 / AP11 (no numba.cuda).
- :mod:`.kitti_file_eval`: a result folder against a label folder (``tools/kitti_eval.py``).
- :mod:`.kitti_eval_jit`: the evaluation's numba signatures; the CLI's 2-process compilation
  when the numba cache is empty.
- :mod:`.distance_bins`: AP per distance range.
- :mod:`.cli`: one-line user errors for the entry points (``run_cli``).
- :mod:`.intrinsics`: camera intrinsics in any form -> P2, the P2 checks, the virtual camera.
- :mod:`.frames`: inference inputs (images, folders, globs, videos), the JSON-lines record,
  the drawing files (``DrawingWriter``).
- :mod:`.mono3d_drawing`: projected 3D boxes + bird's-eye view (``camera.camera_box_corners``).
- :mod:`.commands`: the bodies of the torch-free tools (``tools/kitti_eval.py``).

The old module names (``monodle_plugin.datasets.kitti_io``,
``monodle_plugin.evaluation.functional.kitti_eval``, ``monodle_plugin.structures.classes``,
``monodle_plugin.utils.cli``, ...) are the same module objects. This ``__init__`` imports
nothing.
"""
