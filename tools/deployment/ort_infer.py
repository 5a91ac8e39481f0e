"""Run an exported MonoDLE ONNX model on any camera with numpy, OpenCV and onnxruntime only.

Entry point only: the command is ``monodle_kitti/commands/ort_infer.py`` (``--help`` lists the
options). Torch-free: imports only the package ``monodle_kitti`` (numpy, OpenCV, onnxruntime).
"""
import os.path as osp
import sys

if __name__ == '__main__':  # the checkout's packages first
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
    from monodle_kitti.cli import run_cli
    from monodle_kitti.commands.ort_infer import main
    run_cli(main)  # needs numpy + OpenCV + onnxruntime only: no OpenMMLab environment check
