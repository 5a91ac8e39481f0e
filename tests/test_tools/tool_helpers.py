"""Helpers of the tools tests: repository paths, tool modules, subprocess runs."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TINY_CONFIG = 'tests/test_tools/configs/tiny_yolo8_kitti_mini.py'


def load_tool(name: str):
    """Import ``tools/<name>.py`` as a module (tools/ is not a package), to run its ``main`` /
    ``build_cfg`` in-process: the command-line layer only. Logic the tests check lives in
    ``monodle_plugin`` (the demo's in ``monodle_plugin.apis``) and is imported from there.
    """
    spec = importlib.util.spec_from_file_location(f'tool_{name}', REPO / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tool_env() -> dict:
    """Environment of tool subprocesses: one thread, unbuffered output, not distributed."""
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    env.pop('WORLD_SIZE', None)
    return env


def run_tool(args, tmp_path: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``python <args>`` from the repository root; fail with the output on error."""
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=REPO, env=tool_env(),
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f'{args} exited with {proc.returncode}:\n{proc.stdout[-4000:]}\n'
                    f'{proc.stderr[-4000:]}')
    return proc
