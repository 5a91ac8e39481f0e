"""Convert an official MonoDLE checkpoint (xinzhuma/monodle) to this plugin's state dict.

Usage:
    python tools/convert_monodle_checkpoint.py checkpoint_epoch_140.pth monodle_dla34.pth
    python tools/convert_monodle_checkpoint.py --imagenet-dla34 dla34-ba72cf86.pth dla34_mm.pth

Same as ``tools/model_converters/convert_monodle_checkpoint.py`` (this path is the one the
README and the seed's users know).
Mapping, checks and options: ``monodle_plugin/utils/convert_monodle_checkpoint.py``.
"""
import os.path as osp
import sys

if __name__ == '__main__':
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
    from monodle_plugin.utils.convert_monodle_checkpoint import main
    from monodle_plugin.utils.env_check import check_environment
    check_environment()
    sys.exit(main())
