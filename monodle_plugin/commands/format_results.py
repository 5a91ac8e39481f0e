"""summary.csv / summary.md over several work dirs: config, run, epoch and the AP40 columns.

    python tools/analysis_tools/format_results.py work_dirs/monodle_dla34_kitti \\
        work_dirs/monodle_yolo8_da3 [--epochs last|best|all] [--out-dir .]

Reads each run's validation numbers (mmengine's ``<run>/vis_data/scalars.json``) and the
``metrics.json`` of ``tools/test.py`` runs (the seed's ``format_results.py`` parsed its logs).
Rows are sorted by Car 3D AP40 moderate (IoU 0.7), the ranking column of the results table
(docs/en/backbones.md).
"""
import argparse

from ..evaluation.analysis.runs import collect_runs, write_summary
from ..utils.cli import UserError


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('work_dirs', nargs='+', help='work dirs (work_dirs/<config name>) or '
                        'run folders (work_dirs/<config name>/<timestamp>)')
    parser.add_argument('--epochs', default='last', choices=['last', 'best', 'all'],
                        help='validations listed per run (default: the last one)')
    parser.add_argument('--out-dir', default='.', help='folder for summary.csv / summary.md')
    return parser.parse_args(argv)


def main(argv=None) -> list:
    args = parse_args(argv)
    rows = collect_runs(args.work_dirs, args.epochs)
    if not rows:
        raise UserError(f'no KITTI metrics found under {args.work_dirs} (runs need '
                        'vis_data/scalars.json from validation or metrics.json from tools/test.py)')
    csv_path, md_path = write_summary(rows, args.out_dir)
    print(open(md_path).read())
    print(f'{len(rows)} row(s) written to {csv_path} and {md_path}')
    return rows
