"""MonoDLE's training targets, encoded in the data pipeline (the official dataset's
``__getitem__`` does the same), so the head reads them from the batch instead of encoding on
the host inside the loss."""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmdet3d.registry import TASK_UTILS, TRANSFORMS
from mmengine.structures import InstanceData

#: the keys of ``results`` the encoding reads (set by LoadMonoDLEAnnotations / MonoDLEAffineAug)
NEEDED_KEYS = ('gt_bboxes_3d', 'gt_labels_3d', 'centers_2d', 'gt_alphas', 'gt_difficulty',
               'gt_bboxes', 'img_shape')
#: where the targets go in ``results`` (``PackMonoDLEInputs`` packs them)
RESULTS_KEY = 'monodle_targets'
#: the coder settings that encoded them (``MonoDLEBBoxCoder.encoding_settings``)
SETTINGS_KEY = 'monodle_targets_coder'


def instances_for_encoding(results: dict) -> tuple[InstanceData, InstanceData]:
    """The ``gt_instances_3d`` / ``gt_instances`` that ``PackMonoDLEInputs`` would pack, built
    from ``results`` with the same conversions (``gt_alphas`` -> float32, ``gt_difficulty`` ->
    int64, arrays -> tensors of their dtype), so that encoding them here gives the very arrays
    the head would encode from the packed sample."""
    gt3d, gt2d = InstanceData(), InstanceData()
    gt3d.bboxes_3d = results['gt_bboxes_3d']
    gt3d.labels_3d = torch.as_tensor(np.asarray(results['gt_labels_3d']))
    gt3d.centers_2d = torch.as_tensor(np.asarray(results['centers_2d']))
    if 'depths' in results:
        gt3d.depths = torch.as_tensor(np.asarray(results['depths']))
    gt3d.alphas = torch.from_numpy(np.asarray(results['gt_alphas'], dtype=np.float32))
    gt3d.difficulty = torch.from_numpy(np.asarray(results['gt_difficulty'], dtype=np.int64))
    if 'gt_names' in results:
        gt3d.names = np.asarray(results['gt_names'])
    gt2d.bboxes = torch.as_tensor(np.asarray(results['gt_bboxes']))
    return gt3d, gt2d


@TRANSFORMS.register_module()
class EncodeMonoDLETargets(BaseTransform):
    """Encode MonoDLE's targets of the augmented sample (:meth:`MonoDLEBBoxCoder.encode`).

    Place it after ``MonoDLEAffineAug`` (and ``LoadDA3Depth``), before ``PackMonoDLEInputs``,
    in the training pipeline. The targets are computed in the dataloader workers, packed as
    ``data_sample.monodle_targets`` and moved to the device with the batch by the data
    preprocessor; ``CenterNet3DHead`` then uses them instead of encoding the ground truth
    itself (it still does so when a sample has no packed targets: pipelines without this
    step keep working, at the cost of host work and copies inside the loss).

    Adds ``results['monodle_targets']``: the arrays of :meth:`MonoDLEBBoxCoder.encode` for an
    output grid of ``img_shape / down_ratio`` (``heatmap`` (C, h, w) float32, ``indices``
    (K,) int64 flat peak index, ``offset_2d`` / ``size_2d`` / ``offset_3d`` (K, 2) feature-grid
    pixels, ``depth`` (K, 1) metres, ``heading_bin`` (K, 1) int64, ``heading_res`` (K, 1)
    radians, ``size_3d`` / ``src_size_3d`` (K, 3) metres, ``boxes_2d`` (K, 4) feature grid,
    ``mask_2d`` / ``mask_3d`` (K,) bool; K = ``max_objs``) plus ``slots_2d`` / ``slots_3d``
    (n,) int64, the slots with 2D / 3D targets in increasing order (``np.flatnonzero`` of the
    masks); and ``results['monodle_targets_coder']``, the coder's
    :meth:`~MonoDLEBBoxCoder.encoding_settings`, which the head compares with its own.

    Args:
        bbox_coder: the ``MonoDLEBBoxCoder`` config. Leave it unset in configs:
            ``MonoDLERunner`` (every train tool) writes the model's
            ``model.bbox_head.bbox_coder`` here (:func:`fill_target_coders`), so the head's
            coder is the one source of the settings. None and not filled: the coder's defaults
            (the head stops with an error naming the keys when they differ from its own).
    """

    def __init__(self, bbox_coder: Optional[dict] = None) -> None:
        cfg = dict(type='MonoDLEBBoxCoder')
        cfg.update(bbox_coder or {})
        self.coder = TASK_UTILS.build(cfg)
        self.settings = self.coder.encoding_settings()

    def transform(self, results: dict) -> dict:
        """Add ``monodle_targets`` and ``monodle_targets_coder`` to ``results`` (see above)."""
        missing = [key for key in NEEDED_KEYS if key not in results]
        if missing:
            raise KeyError(f"EncodeMonoDLETargets: {results.get('img_path', 'a sample')} lacks "
                           f'results{missing}: put it after LoadMonoDLEAnnotations and '
                           'MonoDLEAffineAug in the training pipeline')
        gt3d, gt2d = instances_for_encoding(results)
        h, w = results['img_shape'][:2]
        feat_hw = (int(h // self.coder.down_ratio), int(w // self.coder.down_ratio))
        targets = self.coder.encode(gt3d, gt2d, results, feat_hw)
        targets['slots_2d'] = np.flatnonzero(targets['mask_2d'])
        targets['slots_3d'] = np.flatnonzero(targets['mask_3d'])
        results[RESULTS_KEY] = targets
        results[SETTINGS_KEY] = self.settings
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(bbox_coder={self.settings})'


def _pipelines(dataset_cfg) -> list:
    """The pipeline lists of a dataset config and of the datasets it wraps."""
    if not isinstance(dataset_cfg, dict):
        return []
    found = [dataset_cfg['pipeline']] if isinstance(dataset_cfg.get('pipeline'), list) else []
    inner = dataset_cfg.get('dataset')
    for child in (inner if isinstance(inner, list) else [inner]) + list(
            dataset_cfg.get('datasets', None) or []):
        found += _pipelines(child)
    return found


def fill_target_coders(cfg) -> list[str]:
    """Give every ``EncodeMonoDLETargets`` without ``bbox_coder`` the model's coder config.

    Args:
        cfg: mmengine ``Config`` (changed in place): the dataloaders' (and wrapped datasets')
            pipelines; ``model.bbox_head.bbox_coder`` (``num_classes`` defaults to the
            head's, as the head does).

    Returns:
        one line per filled pipeline step, for the log (empty when there was nothing to fill).
    """
    head = (cfg.get('model', None) or {}).get('bbox_head', None) or {}
    coder = dict(head.get('bbox_coder', None) or {})
    coder.setdefault('type', 'MonoDLEBBoxCoder')
    if 'num_classes' in head:
        coder.setdefault('num_classes', head['num_classes'])
    lines = []
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = (cfg.get(loader, None) or {}).get('dataset', None)
        for pipeline in _pipelines(dataset):
            for step in pipeline:
                if (isinstance(step, dict) and step.get('type') == 'EncodeMonoDLETargets'
                        and step.get('bbox_coder', None) is None):
                    step['bbox_coder'] = dict(coder)
                    lines.append(f'{loader}: EncodeMonoDLETargets uses model.bbox_head.'
                                 'bbox_coder')
    return lines
