from mmengine.config.utils import MODULE2PACKAGE

from .monodle_runner import MonoDLERunner

# `_base_ = ['monodle_plugin::monodle/monodle_dla34_kitti.py']` (configs shipped in
# monodle_plugin/.mim/configs, see setup.py): mmengine 0.10 resolves `pkg::` only for the
# packages of its MODULE2PACKAGE table, so importing monodle_plugin adds ours. The process must
# import monodle_plugin before it parses such a config (our tools do; see docs/en/components.md).
MODULE2PACKAGE.setdefault('monodle_plugin', 'monodle_plugin')

__all__ = ['MonoDLERunner']
