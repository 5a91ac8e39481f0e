"""Packing of the MonoDLE training sample into ``inputs`` and a ``Det3DDataSample``."""
from typing import Sequence

import numpy as np
import torch
from mmdet3d.datasets.transforms import Pack3DDetInputs
from mmdet3d.registry import TRANSFORMS
from mmengine.structures import BaseDataElement, PixelData

#: Keys MonoDLE's pipeline packs by default.
MONODLE_KEYS = ('img', 'gt_bboxes', 'gt_bboxes_labels', 'gt_bboxes_3d', 'gt_labels_3d',
                'centers_2d', 'depths', 'gt_alphas', 'gt_difficulty')
#: Meta keys added to mmdet3d's defaults (see docs/design.md, "Metainfo").
MONODLE_META_KEYS = ('sample_id', 'ori_cam2img', 'affine_mat', 'inv_affine_mat', 'flip',
                     'flip_direction', 'crop_scale', 'random_crop')
_DEFAULT_META_KEYS = Pack3DDetInputs.__init__.__defaults__[0]


@TRANSFORMS.register_module()
class PackMonoDLEInputs(Pack3DDetInputs):
    """``Pack3DDetInputs`` plus MonoDLE's per-object fields, the teacher depth and the affine meta.

    Beyond mmdet3d's packing: ``gt_alphas`` (N,) float32 -> ``gt_instances_3d.alphas``,
    ``gt_difficulty`` (N,) int64 -> ``gt_instances_3d.difficulty``; when present (``LoadDA3Depth``
    in the pipeline), ``gt_depth_map`` (1, h, w) float32 metres and ``gt_depth_valid`` (1, h, w)
    bool -> ``data_sample.gt_depth = PixelData(depth=..., valid=...)``; when present
    (``EncodeMonoDLETargets`` in the pipeline), the encoded targets -> ``data_sample.
    monodle_targets``, a ``BaseDataElement`` of tensors (the arrays as they are, same dtypes)
    with metainfo ``coder`` (the encoding settings), which the data preprocessor moves to the
    device with the batch. Object names are not
    packed unless ``'gt_names'`` is in ``keys`` (-> ``gt_instances_3d.names``, (N,) str array).
    ``meta_keys`` are mmdet3d's defaults plus :data:`MONODLE_META_KEYS` unless given explicitly.

    Args:
        keys: result keys to pack; defaults to :data:`MONODLE_KEYS` (missing ones are skipped).
        meta_keys: meta keys; ``None`` = mmdet3d's defaults + :data:`MONODLE_META_KEYS`.
    """

    INSTANCEDATA_3D_KEYS = Pack3DDetInputs.INSTANCEDATA_3D_KEYS + [
        'gt_alphas', 'gt_difficulty', 'gt_names']

    def __init__(self, keys: Sequence[str] = MONODLE_KEYS,
                 meta_keys: Sequence[str] = None) -> None:
        if meta_keys is None:
            meta_keys = tuple(_DEFAULT_META_KEYS) + tuple(
                k for k in MONODLE_META_KEYS if k not in _DEFAULT_META_KEYS)
        super().__init__(keys=tuple(keys), meta_keys=tuple(meta_keys))

    def pack_single_results(self, results: dict) -> dict:
        depth_map = results.pop('gt_depth_map', None)
        depth_valid = results.pop('gt_depth_valid', None)
        on_missing = results.pop('gt_depth_on_missing', 'error')
        targets = results.pop('monodle_targets', None)
        coder_settings = results.pop('monodle_targets_coder', None)
        if 'gt_alphas' in results:
            results['gt_alphas'] = torch.from_numpy(
                np.asarray(results['gt_alphas'], dtype=np.float32))
        if 'gt_difficulty' in results:
            results['gt_difficulty'] = torch.from_numpy(
                np.asarray(results['gt_difficulty'], dtype=np.int64))
        packed = super().pack_single_results(results)
        if depth_map is not None:
            depth = torch.as_tensor(np.asarray(depth_map, dtype=np.float32))
            if depth_valid is None:
                valid = depth > 0
            else:
                valid = torch.as_tensor(np.asarray(depth_valid, dtype=bool))
            if depth.dim() == 2:
                depth, valid = depth[None], valid[None]
            packed['data_samples'].gt_depth = PixelData(
                metainfo=dict(on_missing=on_missing), depth=depth, valid=valid)
        if targets is not None:
            packed['data_samples'].monodle_targets = BaseDataElement(
                metainfo=dict(coder=coder_settings),
                **{key: torch.from_numpy(np.ascontiguousarray(value))
                   for key, value in targets.items()})
        return packed
