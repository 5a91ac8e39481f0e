"""KITTI object benchmark submission: check a folder of result files, zip it for the server.

The KITTI object benchmark (2D, 3D and bird's-eye-view detection share one upload) takes a zip
file holding one result file per **test** image, ``000000.txt`` ... ``007518.txt`` (7518
images, 6-digit ids), **in the zip's root folder** (the devkit's ``readme.txt``: "create a zip
archive of them and store your results in its root folder"; the upload page: "all results must
be provided in the root directory of a zip file"). A zip whose files sit in a sub-folder fails
on the server with "Couldn't read: 000000.txt". Each line is a KITTI label line plus a score,
16 columns::

    type truncated occluded alpha x1 y1 x2 y2 h w l x y z ry score

An image without detections has an empty file (it must still be there).

:func:`check_results` reads every file of a split and collects every problem (missing file,
line that does not parse as a result line); :func:`write_submission_zip` writes the zip in that
layout; :func:`make_kitti_submission` does both and never writes a zip from a folder with a
problem.
"""
from __future__ import annotations

import os
import os.path as osp
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

from monodle_kitti.kitti_io import KittiFormatError, parse_label_fields, read_split_file

#: Images of KITTI's object test split (``ImageSets/test.txt``).
KITTI_TEST_IMAGES = 7518
#: Digits of a KITTI object id in file names (``000000.txt``).
KITTI_ID_DIGITS = 6


@dataclass
class SubmissionCheck:
    """What :func:`check_results` found in a result folder.

    Attributes:
        ids: the split's ids, in split-file order (one result file each in the zip).
        problems: one line per problem (``path: what``, ``path:line: what``); empty = usable.
        empty_ids: ids whose file exists but holds no detection.
        extra_files: ``.txt`` files of the folder that the split does not list (left out of
            the zip).
        class_counts: detections per class name.
    """

    ids: List[str]
    problems: List[str] = field(default_factory=list)
    empty_ids: List[str] = field(default_factory=list)
    extra_files: List[str] = field(default_factory=list)
    class_counts: Counter = field(default_factory=Counter)

    @property
    def num_detections(self) -> int:
        """Result lines over all files."""
        return sum(self.class_counts.values())


def check_result_line(line: str, where: str) -> str:
    """Check one result line; return its class name.

    Args:
        line: ``type truncated occluded alpha x1 y1 x2 y2 h w l x y z ry score``.
        where: ``file:line`` for the message.

    Raises:
        KittiFormatError: not 16 columns, unknown class, a non-numeric or non-finite value
            (:func:`~monodle_plugin.datasets.kitti_io.parse_label_fields`), or a 3D dimension
            (h, w, l) that is not positive.
    """
    fields = line.split()
    if len(fields) != 16:
        raise KittiFormatError(f'{where}: a result line has 16 columns (a label line + score), '
                               f'got {len(fields)}: {line.strip()!r}')
    name, values = parse_label_fields(line, where)
    hwl = values[7:10]
    if min(hwl) <= 0:
        raise KittiFormatError(f'{where}: 3D dimensions (h, w, l) = {tuple(hwl)} must be '
                               f'positive: {line.strip()!r}')
    return name


def check_results(results_dir: str, ids: Sequence[str]) -> SubmissionCheck:
    """Check ``<results_dir>/<id>.txt`` for every id; collect every problem.

    Args:
        results_dir: folder of KITTI result files (``tools/test.py`` with
            ``test_evaluator.format_only=True`` writes one).
        ids: the split's image ids (6 digits each).

    Returns:
        a :class:`SubmissionCheck`; ``problems`` lists missing files, ids that are not 6
        digits and every line that is not a valid result line (see
        :func:`check_result_line`).

    Raises:
        FileNotFoundError: ``results_dir`` is not a folder.
    """
    if not osp.isdir(results_dir):
        raise FileNotFoundError(f'{results_dir}: result folder not found (tools/test.py CONFIG '
                                'CKPT with test_evaluator.format_only=True writes one)')
    report = SubmissionCheck(ids=list(ids))
    bad_ids = [i for i in ids if len(i) != KITTI_ID_DIGITS or not i.isdigit()]
    for sid in bad_ids:
        report.problems.append(f'id {sid!r}: KITTI result files are named by 6-digit ids '
                               '(000000.txt)')
    listed = set(ids)
    report.extra_files = sorted(f for f in os.listdir(results_dir)
                                if f.endswith('.txt') and f[:-4] not in listed)
    for sid in ids:
        path = osp.join(results_dir, f'{sid}.txt')
        if not osp.isfile(path):
            report.problems.append(f'{path}: missing (every image of the split needs a file, '
                                   'an empty one when nothing is detected)')
            continue
        n = 0
        with open(path, encoding='utf-8-sig') as f:  # a UTF-8 BOM is accepted
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    report.class_counts[check_result_line(line, f'{path}:{line_no}')] += 1
                    n += 1
                except KittiFormatError as err:
                    report.problems.append(str(err))
        if n == 0:
            report.empty_ids.append(sid)
    return report


def write_submission_zip(results_dir: str, ids: Sequence[str], out_path: str) -> None:
    """Zip ``<results_dir>/<id>.txt`` of every id into ``out_path``, files in the zip's root.

    The zip is written next to ``out_path`` under a temporary name and renamed at the end, so
    an interrupted run leaves no half-written ``out_path``.
    """
    out_dir = osp.dirname(osp.abspath(out_path))
    os.makedirs(out_dir, exist_ok=True)
    tmp = f'{out_path}.tmp'
    with zipfile.ZipFile(tmp, 'w', compression=zipfile.ZIP_DEFLATED) as zf:
        for sid in ids:
            zf.write(osp.join(results_dir, f'{sid}.txt'), arcname=f'{sid}.txt')
    os.replace(tmp, out_path)


def _listing(items: Sequence[str], limit: int = 20) -> str:
    shown = ' '.join(items[:limit])
    return shown + (f' ... and {len(items) - limit} more' if len(items) > limit else '')


def format_check(report: SubmissionCheck, limit: int = 20) -> List[str]:
    """Text lines of a report: problems (at most ``limit``), images without detections,
    files left out, detections per class."""
    lines = [f'{len(report.ids)} images in the split, {report.num_detections} detections '
             f'({", ".join(f"{c} {n}" for c, n in sorted(report.class_counts.items())) or "none"})']
    if report.empty_ids:
        lines.append(f'{len(report.empty_ids)} images without detections (empty files): '
                     f'{_listing(report.empty_ids, limit)}')
    if report.extra_files:
        lines.append(f'{len(report.extra_files)} result files not in the split, left out of '
                     f'the zip: {_listing(report.extra_files, limit)}')
    for problem in report.problems[:limit]:
        lines.append(f'problem: {problem}')
    if len(report.problems) > limit:
        lines.append(f'problem: ... and {len(report.problems) - limit} more')
    return lines


def make_kitti_submission(results_dir: str, split_file: str, out_path: str,
                          expected_images: Optional[int] = None) -> SubmissionCheck:
    """Check the result files of a split and, if all are valid, zip them for the server.

    Args:
        results_dir: folder of ``<id>.txt`` result files.
        split_file: ``ImageSets/test.txt`` (one id per line); ids are read in file order.
        out_path: the zip to write (``.zip``); not written when a problem is found.
        expected_images: number of ids the split must list (KITTI's test split:
            :data:`KITTI_TEST_IMAGES`); ``None`` accepts any count.

    Returns:
        the :class:`SubmissionCheck`; the zip exists iff ``report.problems`` is empty.

    Raises:
        ValueError: ``out_path`` does not end in ``.zip``, or the split lists a number of ids
            other than ``expected_images``.
        FileNotFoundError: the split file or the result folder is missing.
    """
    if not out_path.endswith('.zip'):
        raise ValueError(f'{out_path}: the output is a zip file, name it <name>.zip')
    ids = read_split_file(split_file)
    if expected_images is not None and len(ids) != expected_images:
        raise ValueError(f'{split_file}: lists {len(ids)} images, expected {expected_images} '
                         "(KITTI's test split has 7518); pass the test split file, or "
                         '--expected-images N for another set')
    if len(set(ids)) != len(ids):
        dup = sorted(i for i, n in Counter(ids).items() if n > 1)
        raise ValueError(f'{split_file}: ids listed twice: {_listing(dup)}')
    report = check_results(results_dir, ids)
    if not report.problems:
        write_submission_zip(results_dir, ids, out_path)
    return report


__all__ = ['KITTI_ID_DIGITS', 'KITTI_TEST_IMAGES', 'SubmissionCheck', 'check_result_line',
           'check_results', 'format_check', 'make_kitti_submission', 'write_submission_zip']
