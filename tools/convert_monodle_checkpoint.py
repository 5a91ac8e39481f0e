"""Convert an official MonoDLE checkpoint (xinzhuma/monodle) to this plugin's state dict.

    python tools/convert_monodle_checkpoint.py checkpoint_epoch_140.pth monodle_dla34.pth
    python tools/convert_monodle_checkpoint.py --imagenet-dla34 dla34-ba72cf86.pth dla34_mm.pth

The guides' path; the same command as ``tools/model_converters/convert_monodle_checkpoint.py``
(mmdet3d's place for converters): both call ``monodle_plugin.commands.convert_monodle_checkpoint``
(mapping and checks: ``monodle_plugin/models/utils/official_checkpoint.py``).
"""
import os.path as osp
import sys

if __name__ == '__main__':
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
    from monodle_kitti.cli import ENV_CHECK, run_command
    run_command('monodle_plugin.commands.convert_monodle_checkpoint', first=ENV_CHECK)
