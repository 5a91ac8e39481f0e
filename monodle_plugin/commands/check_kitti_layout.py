"""Check a KITTI folder against the layout monodle_plugin reads, and every file's content.

Usage: python tools/misc/check_kitti_layout.py data/KITTI [--depth-dir DA3_depth_results]
           [--max-invalid-fraction 0.99] [--no-content]

Per split file in ``ImageSets``: how many ids lack an image, a calibration or a label (and a
depth file with ``--depth-dir``); then, for every frame, the checks of
``monodle_plugin.datasets.validation``: the image decodes completely (a zero-byte or truncated
PNG fails), its size fits its calibration's principal point and its 2D boxes, calib and label
parse (negative dimensions and unknown class names fail), and each depth file reads (key,
shape / aspect ratio, not all NaN / non-positive, at most ``--max-invalid-fraction`` invalid).
Each bad file is printed on its own line; exits 1 if anything is missing or bad, else 0.
``--no-content`` checks only that the files exist (seconds for KITTI instead of minutes).
"""
import argparse


def main(argv: list[str] | None = None) -> int:
    from ..datasets.validation import check_kitti_layout
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('root', nargs='?', default='data/KITTI')
    parser.add_argument('--depth-dir', default=None,
                        help='depth pseudo-label folder, relative to ROOT or absolute')
    parser.add_argument('--max-invalid-fraction', type=float, default=0.99,
                        help='a depth map with more invalid pixels than this fails')
    parser.add_argument('--no-content', action='store_true',
                        help='only check that the files exist (no decoding)')
    args = parser.parse_args(argv)
    return 1 if check_kitti_layout(args.root, args.depth_dir, not args.no_content,
                                   args.max_invalid_fraction) else 0
