"""Command bodies of the torch-free tools (``main(argv=None)`` each; ``tools/kitti_eval.py`` is
a thin shim into :mod:`.kitti_eval`). The other tools' bodies are ``monodle_plugin.commands``;
these live here because importing any module of ``monodle_plugin`` imports torch.
"""
