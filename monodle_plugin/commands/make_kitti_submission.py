"""Check a folder of KITTI result files and zip it for the KITTI object benchmark server.

Usage:
    python tools/misc/make_kitti_submission.py RESULTS_DIR --split-file ImageSets/test.txt \
        --out submission.zip [--expected-images N]

RESULTS_DIR: one ``<id>.txt`` per test image, as ``tools/test.py`` writes them with a
``*_trainval.py`` config (``test_evaluator.format_only=True``: ``work_dirs/<config>/<timestamp>/
results/test/``). Every id of the split file must have a file (an empty one for an image
without detections) and every line must be a KITTI result line (16 columns, finite numbers, a
KITTI class name, positive 3D dimensions). The zip holds the files in its root folder, named
by their 6-digit ids, as the server expects. A split file named ``test.txt`` must list KITTI's
7518 test images unless ``--expected-images`` says otherwise. Prints the images without
detections and the files left out; exits 1 without writing the zip when a file is missing or a
line is invalid (each problem printed), 2 on a usage error.
"""
import argparse
import os.path as osp
import sys


def main(argv: list[str] | None = None) -> int:
    from ..evaluation.submission import (
        KITTI_TEST_IMAGES,
        format_check,
        make_kitti_submission,
    )
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('results_dir', help='folder of <id>.txt KITTI result files')
    parser.add_argument('--split-file', required=True,
                        help='image ids to submit, one per line (data/KITTI/ImageSets/test.txt)')
    parser.add_argument('--out', required=True, help='zip file to write (submission.zip)')
    parser.add_argument('--expected-images', type=int, default=None,
                        help=f'number of ids the split must list (default: {KITTI_TEST_IMAGES} '
                        'for a file named test.txt, any count otherwise)')
    args = parser.parse_args(argv)
    expected = args.expected_images
    if expected is None and osp.basename(args.split_file) == 'test.txt':
        expected = KITTI_TEST_IMAGES
    report = make_kitti_submission(args.results_dir, args.split_file, args.out, expected)
    for line in format_check(report):
        print(line)
    if report.problems:
        print(f'{len(report.problems)} problems in {args.results_dir}: no zip written',
              file=sys.stderr)
        return 1
    print(f'wrote {args.out}: {len(report.ids)} result files in the zip root')
    return 0
