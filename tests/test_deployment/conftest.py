"""Shared helper of the deployment tests."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run_ort_infer_without_torch(model: Path, images: Path, out_dir: Path, *extra: str
                                 ) -> subprocess.CompletedProcess:
    """tools/deployment/ort_infer.py MODEL IMAGES --out-dir OUT_DIR [EXTRA ...] in a process
    where torch and the OpenMMLab stack (and monodle_plugin) cannot be imported."""
    code = ("import runpy, sys\n"
            "for m in ('torch', 'mmengine', 'mmdet3d', 'mmdet', 'mmcv', 'monodle_plugin'):\n"
            "    sys.modules[m] = None\n"
            f"sys.argv = ['ort_infer.py', {str(model)!r}, {str(images)!r}, "
            f"'--out-dir', {str(out_dir)!r}, *{[str(e) for e in extra]!r}]\n"
            f"runpy.run_path({str(ROOT / 'tools/deployment/ort_infer.py')!r}, "
            "run_name='__main__')\n")
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, PYTHONPATH=''))


@pytest.fixture
def ort_infer_without_torch():
    """``run(model, images, out_dir, *extra_args) -> CompletedProcess``: ort_infer.py without
    torch."""
    return _run_ort_infer_without_torch
