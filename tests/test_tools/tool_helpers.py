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
    """The command module of ``tools/<name>.py`` (every tool is a thin shim into
    ``monodle_plugin.commands.<stem>``, or ``monodle_kitti.commands.<stem>`` for the torch-free
    ones), to run its ``main`` / ``build_cfg`` in-process: the command-line layer only. Logic
    the tests check lives in the package by role and is imported from there.
    """
    stem = name.rsplit('/', 1)[-1]
    shim = (REPO / 'tools' / f'{name}.py').read_text(encoding='utf-8')
    package = 'monodle_kitti' if 'monodle_kitti.commands.' in shim else 'monodle_plugin'
    assert (f'{package}.commands.{stem} import main' in shim
            or f"run_command('{package}.commands.{stem}'" in shim), f'tools/{name}.py is not a shim'
    return importlib.import_module(f'{package}.commands.{stem}')


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
