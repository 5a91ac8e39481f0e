"""MonoDLEVisualizationHook: PNGs of test predictions (projected 3D boxes + bird's-eye view).

Enabled by ``tools/test.py --show-dir DIR``. mmdet3d's ``Det3DVisualizationHook`` draws through
the ``Det3DLocalVisualizer`` (matplotlib state, no BEV panel for the mono task); this hook writes
one headless OpenCV canvas per image with :func:`draw_mono3d_result`, the frame's KITTI labels
(``../label_2/<stem>.txt``, where present) in green as ``tools/demo.py --show-gt`` draws them.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Optional, Sequence

import cv2
import numpy as np
from mmdet3d.registry import HOOKS
from mmengine.hooks import Hook

from monodle_kitti.kitti_io import read_label_boxes
from monodle_kitti.mono3d_drawing import draw_mono3d_result

from ...models.detectors.monodle import drawing_score_thr


def sample_to_drawables(sample, score_thr: float) -> tuple:
    """(image path, raw P2 4x4, boxes (N, 7), labels (N,), scores (N,)) of one data sample."""
    meta = sample.metainfo
    cam2img = np.asarray(meta.get('ori_cam2img', meta['cam2img']), dtype=np.float64)
    pred = sample.pred_instances_3d
    boxes = pred.bboxes_3d.tensor.detach().cpu().numpy()[:, :7]
    scores = pred.scores_3d.detach().cpu().numpy()
    labels = pred.labels_3d.detach().cpu().numpy()
    keep = scores >= score_thr
    return meta['img_path'], cam2img, boxes[keep], labels[keep], scores[keep]


@HOOKS.register_module()
class MonoDLEVisualizationHook(Hook):
    """Write ``<out_dir>/<image name>.png`` for every test image.

    Args:
        out_dir: output folder; a relative path is put under the run folder
            ``work_dir/<timestamp>/``.
        score_thr: boxes scoring below are not drawn; None (default): the model's
            ``test_cfg.score_thr`` (``tools/test.py --score-thr`` sets it).
        interval: draw every ``interval``-th test batch (1 = all).
        show_gt: also draw the frame's ``../label_2/<stem>.txt`` boxes (DontCare left out) in
            green where the file exists (KITTI test images have none: predictions only).
    """

    priority = 'LOW'

    def __init__(self, out_dir: str = 'show', score_thr: Optional[float] = None,
                 interval: int = 1, show_gt: bool = True) -> None:
        if not isinstance(show_gt, bool):  # 'no' would read as True
            raise TypeError(f'MonoDLEVisualizationHook: show_gt must be True or False, got '
                            f'{show_gt!r}')
        self.out_dir = out_dir
        self.show_gt = show_gt
        self.score_thr = score_thr
        self.interval = interval
        self._dir: Optional[str] = None
        self._thr: Optional[float] = None

    def before_test(self, runner) -> None:
        self._dir = (self.out_dir if osp.isabs(self.out_dir)
                     else osp.join(runner.log_dir, self.out_dir))
        os.makedirs(self._dir, exist_ok=True)
        self._thr = drawing_score_thr(runner.model, self.score_thr)
        runner.logger.info(f'Drawing test predictions with score >= {self._thr} to {self._dir}')

    def after_test_iter(self, runner, batch_idx: int, data_batch=None,
                        outputs: Optional[Sequence] = None) -> None:
        if not outputs or batch_idx % self.interval:
            return
        for sample in outputs:
            path, cam2img, boxes, labels, scores = sample_to_drawables(sample, self._thr)
            img = cv2.imread(path)
            if img is None:
                raise OSError(f'{path}: image could not be read for drawing')
            gt = read_label_boxes(path) if self.show_gt else None
            canvas = draw_mono3d_result(img, cam2img, boxes, labels, scores, gt_boxes=gt,
                                        title=osp.basename(path))
            name = osp.splitext(osp.basename(path))[0] + '.png'
            cv2.imwrite(osp.join(self._dir, name), canvas)
