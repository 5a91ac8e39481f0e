"""Publish a checkpoint for users (mmdet3d's ``tools/model_converters/publish_model.py``).

Usage:
    python tools/model_converters/publish_model.py work_dirs/RUN/epoch_140.pth \\
        monodle_yolo8_kitti.pth          # -> monodle_yolo8_kitti-<sha256[:8]>.pth

Drops the optimizer, schedulers and message hub; keeps ``state_dict``, ``meta.cfg`` and
``meta.dataset_meta``; adds class names, input size, normalisation, decode mode, package version
and git commit to ``meta`` (``monodle_plugin/deployment/publish_model.py``). The published file
alone is enough for ``tools/test.py``, ``tools/demo.py`` and ``tools/deployment/export_onnx.py``.
A checkpoint that cannot be published ends with one line ``error: ...`` and exit status 2.
"""
import os.path as osp
import sys

if __name__ == '__main__':
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
    from monodle_kitti.cli import ENV_CHECK, run_command
    run_command('monodle_plugin.commands.publish_model', first=ENV_CHECK)
