"""Training curves and iteration times of runs, from mmengine's ``vis_data/scalars.json``.

mmdet3d's ``tools/analysis_tools/analyze_logs.py``, with its two tasks and options::

    python tools/analysis_tools/analyze_logs.py plot_curve \\
        work_dirs/monodle_yolo8_da3/<timestamp>/vis_data/scalars.json \\
        --keys loss loss_depth loss_depth_distill --out curves.png
    python tools/analysis_tools/analyze_logs.py plot_curve RUN_A/vis_data/scalars.json \\
        RUN_B/vis_data/scalars.json --keys KITTI/Car_3D_AP40_moderate_strict --legend A B \\
        --out ap.png
    python tools/analysis_tools/analyze_logs.py cal_train_time RUN/vis_data/scalars.json

Training keys (``loss``, ``loss_heatmap`` ... ``loss_depth_distill``, ``distill_lambda``,
``distill_valid_frac``, ``lr``, ``time``) are drawn against the iteration, validation keys
(``KITTI/..._AP40_...``, also by mmdet3d's short name ``Car_3D_AP40_moderate_strict``) against
the epoch, one panel each; ``--eval`` is accepted for mmdet3d's command lines (validation keys
are recognised without it). A run folder may stand for its ``vis_data/scalars.json``.
``cal_train_time`` prints per file the slowest and fastest epoch, the std over epochs and the
mean seconds per iteration (the first logged value of each epoch left out unless
``--include-outliers``). An unknown key is an error listing the keys the file has.
"""
import argparse


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='task', required=True, help='plot_curve | cal_train_time')
    plot = sub.add_parser('plot_curve', help='plot training / validation curves')
    plot.add_argument('json_logs', nargs='+', help='vis_data/scalars.json files (or run dirs)')
    plot.add_argument('--keys', nargs='+', default=['loss'], help='keys to plot')
    plot.add_argument('--eval', action='store_true',
                      help="mmdet3d's flag for validation keys (recognised without it)")
    plot.add_argument('--eval-interval', default='1',
                      help="accepted for mmdet3d's command lines; the epochs are read from "
                      'the file')
    plot.add_argument('--title', help='figure title')
    plot.add_argument('--legend', nargs='+', default=None,
                      help='one label per (file, key), file-major (default <file>_<key>)')
    plot.add_argument('--backend', default=None, help='matplotlib backend')
    plot.add_argument('--style', default='dark',
                      help="matplotlib style ('dark' = seaborn's dark grid, mmdet3d's default)")
    plot.add_argument('--out', default=None, help='image to write (default: show the figure)')
    time = sub.add_parser('cal_train_time', help='average time per training iteration')
    time.add_argument('json_logs', nargs='+', help='vis_data/scalars.json files (or run dirs)')
    time.add_argument('--include-outliers', action='store_true',
                      help='keep the first logged time of every epoch')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    from ..evaluation.analysis.training_logs import (
        format_train_time,
        load_scalars,
        plot_curves,
        train_time_stats,
    )
    args = parse_args(argv)
    if args.task == 'cal_train_time':
        out = {}
        for path in args.json_logs:
            log = load_scalars(path)
            out[path] = train_time_stats(log, args.include_outliers)
            print(format_train_time(log.path, out[path]))
        return out
    curves = plot_curves(args.json_logs, args.keys, args.out, args.legend, args.title,
                         args.style, args.backend)
    for label, (xs, _, kind) in curves.items():
        print(f'plot curve of {label}: {len(xs)} points over {kind}')
    if args.out is not None:
        print(f'save curve to: {args.out}')
    return curves
