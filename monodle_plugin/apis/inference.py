"""Build a detector from a checkpoint (config optional) and run it on one image.

mmdet3d's ``inference_mono_3d_detector`` needs an info ``.pkl`` per image; :func:`detect_image`
runs the test pipeline itself on ``{img_path, cam2img}``. The model is built by
``mmdet3d.apis.init_model`` (:func:`init_detector`, also used by
:class:`~monodle_plugin.apis.MonoDLEInferencer`, which handles folders, globs, videos, any
intrinsics and the result files).
"""
from __future__ import annotations

import os.path as osp
import warnings
from typing import Any, Optional

import numpy as np
import torch
from mmengine.dataset import Compose, pseudo_collate

from monodle_kitti.intrinsics import p2_problems
from monodle_kitti.numpy_runtime import (  # torch-free: shared with tools/deployment/ort_infer
    calib_path_for,
    kitti_sibling,
    list_images,
)

from ..utils.checkpoint_loading import (
    load_weights_strict,
    resolve_config,
    skip_backbone_pretrained,
)


def build_detector(config: Optional[str], checkpoint: str, device: str = 'cpu',
                   cfg_options: Optional[dict] = None, allow_partial_load: bool = False
                   ) -> tuple[torch.nn.Module, Compose]:
    """(model in eval mode, test pipeline) from a checkpoint and, optionally, a config file.

    ``config=None`` uses the config stored in the checkpoint (``meta.cfg``, read as plain
    data: :func:`~monodle_plugin.utils.checkpoint_loading.resolve_config`); when both are
    given and their models differ, one line says so. ``model.cfg`` is the config used.

    The model is built by ``mmdet3d.apis.init_model`` (SyncBN -> BN, ``model.cfg``, device,
    eval mode) without its checkpoint loading, which is not strict (a missing or mis-shaped
    tensor would silently keep random weights); ``load_weights_strict`` loads the weights
    (``weights_only``; ``allow_partial_load`` to accept a partial match). The backbone's
    pretrained files are never needed: the checkpoint holds every weight.
    """
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
    cfg, name = resolve_config(config, checkpoint, cfg_options)
    model = init_detector(cfg, checkpoint, name, device, allow_partial_load)
    return model, Compose(cfg.test_dataloader.dataset.pipeline)


def init_detector(cfg: Any, checkpoint: str, config_name: str, device: str = 'cpu',
                  allow_partial_load: bool = False) -> torch.nn.Module:
    """The model of ``cfg`` with ``checkpoint``'s weights, loaded strictly, in eval mode.

    Built by ``mmdet3d.apis.init_model`` (SyncBN -> BN, ``model.cfg``, device) without its
    non-strict loading; the backbone's pretrained files are switched off (``cfg`` is changed).
    ``config_name`` is quoted in a mismatch error.
    """
    from mmdet3d.apis import init_model
    skip_backbone_pretrained(cfg.model)
    if cfg.get('custom_imports'):  # e.g. mmpretrain.models for registry backbones
        from mmengine.utils import import_modules_from_strings
        import_modules_from_strings(**cfg.custom_imports)
    with warnings.catch_warnings():  # init_model's "Don't suggest using CPU device"
        warnings.filterwarnings('ignore', message="Don't suggest using CPU")
        model = init_model(cfg, None, device=device)
    load_weights_strict(model, checkpoint, config_name, allow_partial_load)
    return model.to(device).eval()


@torch.no_grad()
def detect_image(model: torch.nn.Module, pipeline: Compose, img_path: str,
                 cam2img: np.ndarray, index: int = 0, calib_path: str | None = None) -> Any:
    """Run the test pipeline and the model on one image.

    Args:
        cam2img: the image's P2, (3, 4) or (4, 4), pixels; checked against the image
            (:func:`~monodle_kitti.intrinsics.p2_problems`, ``ValueError``).
        index: ``sample_idx`` of the sample.
        calib_path: where ``cam2img`` was read (named in the error).

    Returns:
        The ``Det3DDataSample``: ``pred_instances_3d`` (camera-frame boxes, bottom centre,
        metres / radians; scores; labels) and ``pred_instances`` (2D boxes, raw pixels).
    """
    stem = osp.splitext(osp.basename(img_path))[0]
    info = dict(img_path=img_path, cam2img=cam2img, sample_idx=index, sample_id=stem)
    data = pipeline(info)
    problems = p2_problems(cam2img, data['data_samples'].metainfo['ori_shape'][:2],
                           calib_path or 'the calibration', img_path)
    if problems:  # an all-zero P2 crashed OpenCV, a resized image ran silently
        raise ValueError(problems[0])
    return model.test_step(pseudo_collate([data]))[0]


__all__ = ['build_detector', 'calib_path_for', 'detect_image', 'init_detector', 'kitti_sibling',
           'list_images']
