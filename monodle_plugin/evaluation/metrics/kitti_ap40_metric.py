"""KITTI AP40 / AP11 metric for monocular 3D detection that runs on any machine.

mmdet3d's ``KittiMetric`` needs a CUDA driver (its BEV / 3D IoU is a ``numba.cuda`` kernel)
and a converted ``.pkl`` info file. This metric reads the raw KITTI label files and evaluates
on the CPU with ``functional.kitti_eval``, whose numbers equal mmdet3d's ``kitti_eval``.
"""
import logging
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmdet3d.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.logging import MessageHub, MMLogger, print_log

from monodle_kitti.kitti_io import (
    detections_to_kitti_anno,
    load_kitti_dir,
    write_kitti_results,
)

from ...structures.classes import MONODLE_CLASSES
from ..analysis.distance_bins import compute_ap_by_distance, depth_bins_from_edges
from ..functional.kitti_eval import (
    EVAL_TYPES,
    KITTI_EVAL_CLASSES,
    compute_kitti_ap,
    format_kitti_table,
    kitti_aps_to_dict,
)


def _field(obj, key: str, default=None):
    """``obj[key]`` for dicts, ``obj.key`` for ``InstanceData``-like objects."""
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _numpy(x) -> np.ndarray:
    if hasattr(x, 'tensor'):  # mmdet3d box structures
        x = x.tensor
    if hasattr(x, 'detach'):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def prediction_to_kitti_anno(data_sample, classes: Sequence[str], sid: str
                             ) -> Dict[str, np.ndarray]:
    """One image's predictions as devkit column arrays (what the result ``<id>.txt`` holds).

    Args:
        data_sample: a ``Det3DDataSample`` (or dict) with ``pred_instances_3d`` (camera boxes
            ``x, y, z`` bottom centre, ``l, h, w``, ``ry``; ``scores_3d``, ``labels_3d``,
            optional ``alphas``) and ``pred_instances`` (``bboxes``, raw-image pixels).
        classes: label index -> class name.
        sid: the image id, named in errors.
    """
    pred_3d = _field(data_sample, 'pred_instances_3d')
    pred_2d = _field(data_sample, 'pred_instances')
    if pred_3d is None or pred_2d is None:
        raise KeyError(f'image {sid}: data sample needs "pred_instances_3d" and '
                       '"pred_instances"')
    alphas = _field(pred_3d, 'alphas')
    return detections_to_kitti_anno(
        _numpy(_field(pred_3d, 'bboxes_3d')), _numpy(_field(pred_3d, 'scores_3d')),
        _numpy(_field(pred_3d, 'labels_3d')), _numpy(_field(pred_2d, 'bboxes')),
        None if alphas is None else _numpy(alphas), classes, sid)


@METRICS.register_module()
class KittiAP40Metric(BaseMetric):
    """KITTI 2D / BEV / 3D / AOS average precision (AP40 and AP11), CPU only, no pkl needed.

    Args:
        data_root: KITTI root holding ``training/label_2`` (raw KITTI layout).
        label_dir: label folder relative to ``data_root`` (or absolute).
        classes: names of the model's labels 0, 1, 2, ... Default None: the dataset's
            ``metainfo['classes']`` (mmengine sets ``dataset_meta`` from the evaluated
            dataset), or ``MONODLE_CLASSES`` when the metric runs without a dataset.
            Detections are mapped to names with it, so the label order does not matter.
            Given together with a dataset whose classes differ, it is an error.
        eval_classes: classes to evaluate and report, default every class of ``classes``
            that KITTI evaluates (Car, Pedestrian, Cyclist).
        eval_types: overlap types, subset of ('bbox', 'bev', '3d'); 'aos' (orientation
            similarity) is added when present in the list and the predictions carry alphas.
        ap_types: which APs go into the returned dict, subset of ('AP40', 'AP11').
        format_only: only write the result files (test split, no labels): to
            ``submission_prefix``, else to ``<run dir>/results/test/`` (see ``save_results``);
            without either it is an error. Evaluating images of ``testing/`` without it is an
            error too (their ids would be scored against ``training`` labels).
        submission_prefix: folder for KITTI result files, one ``<sample_id>.txt`` per image
            (an empty file for an image without detections).
        depth_bins: edges in metres (e.g. ``[0, 20, 40]``: 0-20, 20-40, 40+ m) for an extra
            AP per distance range (objects binned by their depth ``z``, see
            ``analysis.distance_bins``); keys get the bin as suffix,
            ``KITTI/Car_3D_AP40_moderate_strict_0-20m``. ``None``: no per-distance AP.
        save_results: when ``submission_prefix`` is not set, write the KITTI result files of
            each evaluation into ``<run dir>/results/epoch_<N>/`` (``test`` outside
            training; run dir = the runner's ``work_dir/<timestamp>``), which the analysis
            tools and the KITTI devkit read.
        collect_device, prefix: see ``mmengine.evaluator.BaseMetric``. Keys are returned
            without a prefix by default, e.g. ``KITTI/Car_3D_AP40_moderate_strict``.

    ``process`` expects the detector's data samples (dicts or data elements) with
    ``pred_instances_3d`` (``bboxes_3d`` camera-frame bottom-centre boxes ``x, y, z, l, h, w,
    ry`` in metres / radians, ``scores_3d``, ``labels_3d``, optional ``alphas``) and
    ``pred_instances`` (``bboxes`` (N, 4) raw-image pixels, same order as the 3D boxes), and
    ``sample_idx`` (int) or ``sample_id`` (str) in the metainfo.
    """

    default_prefix: Optional[str] = None

    def __init__(self,
                 data_root: str = 'data/KITTI/',
                 label_dir: str = 'training/label_2',
                 classes: Optional[Sequence[str]] = None,
                 eval_classes: Optional[Sequence[str]] = None,
                 eval_types: Sequence[str] = ('bbox', 'bev', '3d', 'aos'),
                 ap_types: Sequence[str] = ('AP40', 'AP11'),
                 format_only: bool = False,
                 submission_prefix: Optional[str] = None,
                 depth_bins: Optional[Sequence[float]] = None,
                 save_results: bool = True,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.label_dir = label_dir if osp.isabs(label_dir) else osp.join(data_root, label_dir)
        self._classes = None if classes is None else tuple(classes)
        self._eval_classes = None if eval_classes is None else list(eval_classes)
        self._check_eval_classes(self.classes)
        bad = [t for t in eval_types if t not in EVAL_TYPES]
        if bad or not [t for t in eval_types if t != 'aos']:
            raise ValueError(f'eval_types {list(eval_types)}: choose from {EVAL_TYPES}, '
                             'with at least one of bbox, bev, 3d')
        if 'aos' in eval_types and 'bbox' not in eval_types:
            raise ValueError("eval_types: 'aos' needs 'bbox' (AOS is computed on 2D matches)")
        self.eval_types = list(eval_types)
        bad = [a for a in ap_types if a not in ('AP40', 'AP11')]
        if bad or not ap_types:
            raise ValueError(f"ap_types {list(ap_types)}: choose from ('AP40', 'AP11')")
        self.ap_types = list(ap_types)
        self.format_only = format_only
        self.submission_prefix = submission_prefix
        self.depth_bins = None if depth_bins is None else depth_bins_from_edges(depth_bins)
        self.save_results = save_results

    # ------------------------------------------------------------------ classes
    @property
    def classes(self) -> tuple:
        """Label index -> name: the ``classes`` argument, else ``dataset_meta['classes']``,
        else ``MONODLE_CLASSES``."""
        meta = (self.dataset_meta or {}).get('classes')
        if self._classes is not None:
            if meta is not None and tuple(meta) != self._classes:
                raise ValueError(f'KittiAP40Metric: classes={list(self._classes)} but the '
                                 f'evaluated dataset labels {list(meta)}; drop the metric\'s '
                                 '`classes` (it follows the dataset) or make them equal')
            return self._classes
        return tuple(meta) if meta is not None else MONODLE_CLASSES

    @property
    def eval_classes(self) -> list:
        """Classes evaluated and reported (see the ``eval_classes`` argument)."""
        return self._check_eval_classes(self.classes)

    def _check_eval_classes(self, classes: Sequence[str]) -> list:
        eval_classes = self._eval_classes
        if eval_classes is None:
            eval_classes = [c for c in classes if c in KITTI_EVAL_CLASSES]
        unknown = [c for c in eval_classes if c not in KITTI_EVAL_CLASSES]
        if unknown or not eval_classes:
            raise ValueError(f'eval_classes {list(eval_classes)}: KITTI evaluates only '
                             f'{list(KITTI_EVAL_CLASSES)}')
        return list(eval_classes)

    # ------------------------------------------------------------------ process
    def _sample_id(self, data_sample) -> str:
        sid = _field(data_sample, 'sample_id')
        if sid is None:
            idx = _field(data_sample, 'sample_idx')
            if idx is None:
                raise KeyError('data sample has neither "sample_id" nor "sample_idx" '
                               'in its metainfo')
            sid = f'{int(idx):06d}'
        return str(sid)

    def _to_kitti_anno(self, data_sample, sid: str) -> Dict[str, np.ndarray]:
        return prediction_to_kitti_anno(data_sample, self.classes, sid)

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Convert each sample's predictions to a KITTI annotation dict (numpy, CPU)."""
        for data_sample in data_samples:
            sid = self._sample_id(data_sample)
            img_path = str(_field(data_sample, 'img_path', '') or '')
            testing = osp.basename(osp.dirname(osp.dirname(img_path))) == 'testing'
            self.results.append(dict(sample_id=sid, anno=self._to_kitti_anno(data_sample, sid),
                                     testing=testing))

    # ------------------------------------------------------------------ compute
    @staticmethod
    def auto_results_dir(logger: logging.Logger) -> Optional[str]:
        """``<run dir>/results/<epoch_N | test>`` or ``None`` without a run dir.

        The run dir is the folder of the runner's log file (``work_dir/<timestamp>``); the
        epoch is the number of epochs trained at this evaluation (``epoch_3`` evaluates the
        weights saved as ``epoch_3.pth``).
        """
        run_dir = None
        for handler in logger.handlers:
            if isinstance(handler, logging.FileHandler):
                run_dir = osp.dirname(handler.baseFilename)
                break
        if run_dir is None:
            print_log('KittiAP40Metric: no run directory (no log file), KITTI result files '
                      'not written; set submission_prefix to choose a folder',
                      logger=logger, level=logging.WARNING)
            return None
        hub = MessageHub.get_current_instance()
        # RuntimeInfoHook: 'epoch' is the 0-indexed epoch set before it trained, so the
        # validation after the N-th epoch (weights epoch_N.pth) reads N - 1.
        stage, epoch = hub.get_info('loop_stage'), hub.get_info('epoch')
        if stage == 'val' and epoch is not None:
            tag = f'epoch_{int(epoch) + 1}'
        else:
            tag = 'test'
        return osp.join(run_dir, 'results', tag)

    def load_ground_truth(self, ids: Sequence[str]) -> List[Dict[str, np.ndarray]]:
        """Label files ``<label_dir>/<id>.txt``; a missing file is an error naming it."""
        for sid in ids:
            path = osp.join(self.label_dir, f'{sid}.txt')
            if not osp.isfile(path):
                raise FileNotFoundError(f'predictions for image {sid} but no label file {path}')
        return load_kitti_dir(self.label_dir, ids, is_result=False)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Evaluate, log the table, return the flat AP dict (empty with ``format_only``)."""
        logger = MMLogger.get_current_instance()
        by_id: Dict[str, dict] = {}
        for r in results:  # distributed padding may repeat samples: keep one per image
            by_id.setdefault(r['sample_id'], r['anno'])
        ids = sorted(by_id)
        dt_annos = [by_id[i] for i in ids]
        if not self.format_only and any(r.get('testing') for r in results):
            raise ValueError('KittiAP40Metric: the evaluated images are in testing/ (the test '
                             'split has no labels); set test_evaluator.format_only=True to '
                             'write the result files only (the *_trainval.py configs do)')
        out_dir = self.submission_prefix
        if out_dir is None and (self.save_results or self.format_only):
            out_dir = self.auto_results_dir(logger)
        if out_dir is None and self.format_only:
            raise ValueError('KittiAP40Metric(format_only=True): no submission_prefix and no '
                             'run directory to write the result files into; set '
                             'test_evaluator.submission_prefix=<folder>')
        if out_dir is not None:
            write_kitti_results(out_dir, ids, dt_annos)
            print_log(f'KITTI result files ({len(ids)} images) written to {out_dir}',
                      logger=logger)
        if self.format_only:
            return {}
        gt_annos = self.load_ground_truth(ids)
        types = [t for t in self.eval_types if t != 'aos']
        eval_classes = self.eval_classes
        aps, _ = compute_kitti_ap(gt_annos, dt_annos, eval_classes, types,
                                  with_aos='aos' in self.eval_types)
        table = format_kitti_table(aps, eval_classes)
        print_log(f'KITTI evaluation of {len(ids)} images:\n{table}', logger=logger)
        out = kitti_aps_to_dict(aps, eval_classes)
        if self.depth_bins is not None:
            by_depth, tables = compute_ap_by_distance(
                gt_annos, dt_annos, eval_classes, self.depth_bins, types,
                with_aos='aos' in self.eval_types)
            for name, tab in tables.items():
                print_log(f'KITTI evaluation, objects at depth {name}:\n{tab}', logger=logger)
            out.update(by_depth)
        return {k: v for k, v in out.items() if any(f'_{a}_' in k for a in self.ap_types)}

