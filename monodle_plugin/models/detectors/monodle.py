"""MonoDLE detector: image -> backbone -> neck (stride-4 map) -> CenterNet3DHead."""
from __future__ import annotations

import torch
from mmdet3d.models.detectors.single_stage_mono3d import SingleStageMono3DDetector
from mmdet3d.registry import MODELS
from mmengine.model import is_model_wrapper
from torch import Tensor, nn

from ..utils.freezing import check_freeze_mode, freeze, keep_batchnorm_eval
from ..utils.local_weights import check_backbone_weights, check_pretrained_init_cfg


@MODELS.register_module()
class MonoDLE(SingleStageMono3DDetector):
    """Single-stage monocular 3D detector of MonoDLE (CVPR'21).

    ``extract_feat`` returns the neck output (a 1-tuple with the stride-4 map). ``predict``
    works as mmdet3d's ``FCOSMono3D.predict``: the head returns ``(results_3d, results_2d)``,
    which become ``pred_instances_3d`` (``bboxes_3d``, ``scores_3d``, ``labels_3d``,
    ``alphas``) and ``pred_instances`` (2D ``bboxes`` in raw-image pixels, ``scores``,
    ``labels``; the metric writes them into the result files).

    Args:
        channels_last: run backbone, neck and head in ``torch.channels_last`` memory format
            (same numbers; faster convolutions on CPU and with AMP on GPU). Defaults to False.
        freeze_backbone: freeze any backbone, whatever its own options. True: no backbone
            parameter requires a gradient (none is computed, none is all-reduced by DDP) and
            every backbone BatchNorm (torch's BatchNorm / SyncBatchNorm, mmcv's SyncBatchNorm)
            stays in eval mode; ``'weights'``: no gradient, BatchNorm statistics follow the
            model's mode (the seed system's frozen backbones); False (default): the backbone's
            own settings (e.g. ``frozen_stages``) decide.
        **kwargs: ``backbone``, ``neck``, ``bbox_head``, ``train_cfg``, ``test_cfg``,
            ``data_preprocessor``, ``init_cfg`` as for ``SingleStageMono3DDetector``.
    """

    def __init__(self, channels_last: bool = False, freeze_backbone: bool | str = False,
                 **kwargs) -> None:
        check_freeze_mode(freeze_backbone, 'MonoDLE')
        check_backbone_weights(kwargs.get('backbone'))  # timm loads while it is built
        # mmdet's SingleStageDetector overwrites bbox_head.train_cfg / test_cfg with the
        # model-level ones, None included, which would silently drop the head's own settings
        # (and any --cfg-options model.bbox_head.test_cfg.* override): one of the two, not both.
        head = kwargs.get('bbox_head')
        for key in ('train_cfg', 'test_cfg'):
            head_cfg = head.get(key) if isinstance(head, dict) else None
            if head_cfg is None:
                continue
            if kwargs.get(key) is None:
                kwargs[key] = head_cfg
            elif dict(kwargs[key]) != dict(head_cfg):
                raise ValueError(f'MonoDLE: model.{key} and model.bbox_head.{key} are both set '
                                 f'and differ ({dict(kwargs[key])} vs {dict(head_cfg)}); set '
                                 f'only one of them')
        super().__init__(**kwargs)
        self._check_channels()
        self.channels_last = channels_last
        if channels_last:
            self.to(memory_format=torch.channels_last)
        self.freeze_backbone = freeze_backbone
        if freeze_backbone is not False:
            freeze(self.backbone, freeze_backbone)
            self.train(self.training)

    def train(self, mode: bool = True) -> MonoDLE:
        """Set train mode; with ``freeze_backbone=True`` the backbone's BatchNorms stay in eval."""
        super().train(mode)
        if mode:
            keep_batchnorm_eval(self.backbone, getattr(self, 'freeze_backbone', False))
        return self

    def _check_channels(self) -> None:
        """Fail at build time, naming both sides, when backbone, neck and head disagree.

        Derived channels go stale when e.g. ``model.backbone.ultralytics_model`` is changed
        with ``--cfg-options`` alone; without this check the mismatch surfaces as a shape error
        deep inside the neck.
        """
        produced = getattr(self.backbone, 'out_channels', None)
        expected = getattr(self.neck, 'in_channels', None) if self.with_neck else None
        if produced is not None and expected is not None and list(produced) != list(expected):
            raise ValueError(f'MonoDLE: the backbone produces channels {list(produced)} but the '
                             f'neck expects in_channels={list(expected)}; set '
                             f'model.neck.in_channels (and model.bbox_head.in_channels) to match')
        neck_out = getattr(self.neck, 'out_channels', None) if self.with_neck else None
        head_in = getattr(self.bbox_head, 'in_channels', None)
        if isinstance(neck_out, int) and isinstance(head_in, int) and neck_out != head_in:
            raise ValueError(f'MonoDLE: the neck outputs {neck_out} channels but '
                             f'bbox_head.in_channels={head_in}')

    def init_weights(self) -> None:
        """Initialise; a local ``Pretrained`` backbone file that is missing is a clear error."""
        check_pretrained_init_cfg(getattr(self.backbone, 'init_cfg', None),
                                  type(self.backbone).__name__)
        super().init_weights()

    def extract_feat(self, batch_inputs_dict: dict) -> tuple[Tensor]:
        """Images ``batch_inputs_dict['imgs']`` (B, 3, H, W) -> neck output (stride-4 map,)."""
        imgs = batch_inputs_dict['imgs']
        if self.channels_last:
            imgs = imgs.contiguous(memory_format=torch.channels_last)
        x = self.backbone(imgs)
        return self.neck(x) if self.with_neck else x

    def predict(self, batch_inputs_dict: dict, batch_data_samples: list,
                rescale: bool = True) -> list:
        """Detect objects; returns the data samples with predictions added."""
        feats = self.extract_feat(batch_inputs_dict)
        results_3d, results_2d = self.bbox_head.predict(feats, batch_data_samples,
                                                        rescale=rescale)
        return self.add_pred_to_datasample(batch_data_samples, results_3d, results_2d)

    def _forward(self, batch_inputs_dict: dict, batch_data_samples: list | None = None
                 ) -> dict[str, Tensor]:
        """Raw head outputs (dict of seven maps), no post-processing."""
        return self.bbox_head.forward(self.extract_feat(batch_inputs_dict))


def drawing_score_thr(model: nn.Module, score_thr: float | None = None) -> float:
    """The score threshold of the drawn boxes: ``score_thr`` when the user sets one, else the
    model's own detection threshold (its head's ``test_cfg.score_thr``, after the detector
    merged ``model.test_cfg`` into it), so that drawings show what the model was configured
    to detect.

    Args:
        model: a MonoDLE detector, or a DDP / DP wrapper of one (``.module``).
        score_thr: the user's threshold (``--score-thr``, ``pred_score_thr``); None: the
            model's.

    Returns:
        The threshold on ``scores_3d`` below which a box is not drawn.
    """
    if score_thr is not None:
        return float(score_thr)
    model = model.module if is_model_wrapper(model) else model
    head = getattr(model, 'bbox_head', None)
    cfg = getattr(head, 'test_cfg', None)
    if not cfg or 'score_thr' not in cfg:
        raise ValueError(f'{type(model).__name__} has no bbox_head.test_cfg.score_thr to draw '
                         'at: give the drawing threshold (--score-thr)')
    return float(cfg['score_thr'])
