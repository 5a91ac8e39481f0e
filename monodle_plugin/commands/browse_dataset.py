"""Browse the training data as the model sees it: one PNG per sample, after the training pipeline.

Usage:
    python tools/misc/browse_dataset.py CONFIG [--output-dir DIR] [--num-samples 10]
        [--ids 000008 000076] [--seed 0] [--split train] [--cfg-options k=v ...]

mmdet3d's tool of the same name, for MonoDLE's data: each PNG stacks, at the network-input
size, the augmented image (flip / crop / affine warp as in training) with the 2D boxes, the
projected 3D boxes and the projected 3D centres; the heatmap targets, one panel per class, as
the head encodes them; and, for +DA3 configs, the teacher depth and its validity mask. Files are
``DIR/<index>_<id>.png`` (default DIR ``work_dirs/browse_dataset/<config name>``); ``--seed``
fixes the augmentation draws. Always written to files, never shown: ``--aug`` and ``--not-show``
(mmdet3d's flags) are accepted and describe what happens anyway.
"""
import argparse
import os.path as osp


def main(argv: list[str] | None = None) -> list:
    from mmengine.config import Config, DictAction

    from ..utils.config_checks import check_cfg_option_keys
    from ..visualization.browse_dataset import browse_dataset
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file (its train_dataloader and model head)')
    parser.add_argument('--output-dir', default=None,
                        help='folder for the PNGs (default work_dirs/browse_dataset/<config>)')
    parser.add_argument('--num-samples', type=int, default=10,
                        help='the first N frames of the split (default 10)')
    parser.add_argument('--ids', nargs='+', default=None, help='frame ids to draw instead')
    parser.add_argument('--seed', type=int, default=0, help='seed of the augmentation draws')
    parser.add_argument('--split', default=None,
                        help="dataset split (default: the config's training split)")
    parser.add_argument('--aug', action='store_true',
                        help="mmdet3d's flag: the training pipeline with augmentation is what "
                        'this tool always draws')
    parser.add_argument('--not-show', action='store_true',
                        help="mmdet3d's flag: nothing is shown, the PNGs are written")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, xxx=yyy format')
    args = parser.parse_args(argv)
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file not found: {args.config}')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        check_cfg_option_keys(cfg, args.cfg_options, args.config)
        cfg.merge_from_dict(args.cfg_options)
    out_dir = args.output_dir or osp.join(
        'work_dirs', 'browse_dataset', osp.splitext(osp.basename(args.config))[0])
    paths = browse_dataset(cfg, out_dir, args.num_samples, args.ids, args.seed, args.split)
    print(f'{len(paths)} samples written to {out_dir}')
    return paths
