"""Command bodies: one module per entry point of ``tools/``, each with ``main(argv=None)``.

The convention for every tool: ``tools/<...>/<name>.py`` is a thin shim (put the checkout first
on ``sys.path``, the environment check where the tool had one, ``run_cli(main)``) and the
command itself (argparse, printing, the calls) is ``monodle_plugin/commands/<name>.py``. What a
command does lives by role beside what it works on (``models/``, ``datasets/``, ``engine/``,
``evaluation/``, ``deployment/``, ``visualization/``, ``apis/``); nothing in the package
imports this sub-package (``tests/test_layering.py``). Tests call ``main`` in-process from here.

The torch-free tools cannot live here (importing any module of ``monodle_plugin`` imports torch):
``tools/kitti_eval.py``'s body is :mod:`monodle_kitti.commands.kitti_eval`.
Not imported by ``monodle_plugin/__init__``: registration does not depend on the tools.
"""
