"""Convert an official MonoDLE checkpoint (xinzhuma/monodle) to this plugin's state dict.

    python tools/convert_monodle_checkpoint.py checkpoint_epoch_140.pth monodle_dla34.pth
    python tools/convert_monodle_checkpoint.py --imagenet-dla34 dla34-ba72cf86.pth dla34_mm.pth

The README's path for ``tools/model_converters/convert_monodle_checkpoint.py`` (mmdet3d's place
for converters), which this runs; the logic is in
``monodle_plugin/utils/convert_monodle_checkpoint.py``.
"""
import os.path as osp
import runpy

if __name__ == '__main__':
    runpy.run_path(osp.join(osp.dirname(osp.abspath(__file__)), 'model_converters',
                            'convert_monodle_checkpoint.py'), run_name='__main__')
