"""``MonoDLEInferencer``: a checkpoint + any camera -> 3D boxes (images, folders, globs, videos).

An mmengine ``BaseInferencer`` registered in mmdet3d's ``INFERENCERS``; the arguments that mean
the same keep the names of mmdet3d's ``MonoDet3DInferencer`` (``weights``, ``device``,
``batch_size``, ``return_datasamples``, ``out_dir``, ``pred_score_thr``, ``draw_pred``,
``show``, ``wait_time``, ``return_vis``, ``no_save_vis``, ``no_save_pred``, ``print_result``).
Unlike mmdet3d's, it needs no info ``.pkl``: intrinsics come in any form
(:mod:`monodle_kitti.intrinsics`), and the config is optional (the checkpoint's
``meta.cfg``). Example::

    from monodle_plugin.apis import MonoDLEInferencer
    inferencer = MonoDLEInferencer('model.pth')               # config from the checkpoint
    out = inferencer('demo/kitti_mini/KITTI/training/image_2', batch_size=4)
    out['predictions'][0]['bboxes_3d']                        # plain dicts, one per frame
    out['data_samples'][0].pred_instances_3d                  # mmdet3d Det3DDataSample
"""
from __future__ import annotations

import json
import os
import os.path as osp
import sys
from typing import Any, Optional, Sequence

import cv2
import numpy as np
import torch
from mmdet3d.registry import INFERENCERS
from mmengine.dataset import Compose, pseudo_collate
from mmengine.infer import BaseInferencer
from mmengine.logging import print_log
from mmengine.registry import init_default_scope
from mmengine.utils import ProgressBar

from monodle_kitti.frames import (
    DrawingWriter,
    Frame,
    count_frames,
    iter_frames,
    list_sources,
    prediction_record,
)
from monodle_kitti.intrinsics import (
    as_intrinsics,
    camera_warnings,
    p2_problems,
    virtual_camera,
    virtual_camera_scale,
)
from monodle_kitti.kitti_io import format_kitti_lines, read_label_boxes
from monodle_kitti.mono3d_drawing import draw_mono3d_result

from ..evaluation.metrics.kitti_ap40_metric import prediction_to_kitti_anno
from ..models.detectors.monodle import drawing_score_thr
from ..utils.checkpoint_loading import resolve_config
from .inference import init_detector


def _input_size(cfg: Any) -> tuple[int, int]:
    for step in cfg.test_dataloader.dataset.pipeline:
        if step.get('type') == 'MonoDLEAffineAug':
            size = step.get('output_size', (1280, 384))
            return int(size[0]), int(size[1])
    raise ValueError("the config's test pipeline has no MonoDLEAffineAug (MonoDLE's warp to the "
                     'network input): use a MonoDLE config')


def _raw_cam2img(sample: Any) -> np.ndarray:
    """The (4, 4) projection of the raw image the boxes are expressed for."""
    meta = sample.metainfo
    return np.asarray(meta.get('real_cam2img', meta.get('ori_cam2img', meta['cam2img'])),
                      np.float64)


# mmdet3d 1.4.0 gives its INFERENCERS the import location 'mmdet3d.api.inferencers' (a typo of
# mmdet3d.apis): every INFERENCERS.get / build raises ModuleNotFoundError, mmdet3d's own names
# included. The location cannot be imported, so marking it as imported changes nothing else;
# mmdet3d's inferencers register when mmdet3d.apis is imported, as before.
if getattr(INFERENCERS, '_locations', None) == ['mmdet3d.api.inferencers']:
    INFERENCERS._imported = True


@INFERENCERS.register_module(name=['MonoDLEInferencer', 'monodle'])
class MonoDLEInferencer(BaseInferencer):
    """MonoDLE inference on images / videos of any camera.

    Args:
        weights: checkpoint file (``tools/train.py``'s or ``publish_model.py``'s).
        config: config file; None uses the checkpoint's own (``meta.cfg``, read as plain data);
            when both are given and the models differ, one line says so.
        device: ``'cpu'``, ``'cuda:0'``, ...
        cfg_options: config overrides (``--cfg-options``).
        allow_partial_load: load only the matching tensors (default: strict).
        normalize_camera: virtual-camera normalisation (default on): each image is padded /
            cropped so that its focal length at the network input is the training camera's
            (:func:`~monodle_kitti.intrinsics.virtual_camera`); boxes are mapped
            back to the real camera.
        show_progress: an mmengine ``ProgressBar`` (on stderr) over the frames.
        model: mmdet3d's name for ``config`` (accepted as an alias).
        scope: registry scope.
    """

    preprocess_kwargs: set = {'intrinsics'}
    forward_kwargs: set = set()
    visualize_kwargs: set = {'return_vis', 'show', 'wait_time', 'draw_pred', 'pred_score_thr',
                             'img_out_dir', 'no_save_vis'}
    postprocess_kwargs: set = {'print_result', 'pred_out_dir', 'return_datasample',
                               'no_save_pred'}

    def __init__(self, weights: str, config: Optional[str] = None, device: str = 'cpu',
                 cfg_options: Optional[dict] = None, allow_partial_load: bool = False,
                 normalize_camera: bool = True, show_progress: bool = True,
                 model: Optional[str] = None, scope: str = 'mmdet3d') -> None:
        if config is None:
            config = model
        if not osp.isfile(str(weights)):
            raise FileNotFoundError(f'checkpoint not found: {weights}')
        init_default_scope(scope)
        cfg, self.config_name = resolve_config(config, str(weights), cfg_options)
        self._allow_partial_load = allow_partial_load
        self.normalize_camera = normalize_camera
        self.show_progress = show_progress
        self._warned: set = set()
        super().__init__(model=cfg, weights=str(weights), device=device, scope=scope,
                         show_progress=show_progress)
        head = self.model.bbox_head
        coder = getattr(head, 'bbox_coder', head)
        self.class_names = list(getattr(coder, 'class_names', None)
                                or head.class_names)
        self.input_size = _input_size(self.cfg)

    # ------------------------------------------------------------------ BaseInferencer parts
    def _init_model(self, cfg: Any, weights: str, device: str = 'cpu') -> torch.nn.Module:
        return init_detector(cfg, weights, self.config_name, device, self._allow_partial_load)

    def _init_pipeline(self, cfg: Any) -> Compose:
        return Compose(cfg.test_dataloader.dataset.pipeline)

    def _init_collate(self, cfg: Any) -> Any:
        return pseudo_collate  # the Det3DDataPreprocessor stacks the batch

    def _init_visualizer(self, cfg: Any) -> None:
        """Drawing is :func:`~monodle_kitti.mono3d_drawing.draw_mono3d_result`
        (projected boxes + bird's-eye view), as ``tools/demo.py`` and ``tools/test.py``."""
        return None

    # ------------------------------------------------------------------ steps
    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            print_log(f'warning: {message}', logger='current', level=30)

    def prepare(self, frame: Frame, intrinsics: Any, normalize: bool
                ) -> tuple[dict, tuple[int, int]]:
        """Test-pipeline output of one frame and the pixel shift of its virtual camera.

        The image is checked against its intrinsics (``p2_problems``), then, with ``normalize``,
        padded / cropped to the training camera's focal length at the network input
        (:func:`~monodle_kitti.intrinsics.virtual_camera`); its sample's metainfo
        gets ``real_cam2img`` (the camera's own (4, 4)), ``virtual_shift`` (dx, dy) and
        ``focal_ratio``.
        """
        path, stem = frame.lookup
        cam2img, where = intrinsics(path, stem)
        img = frame.img if frame.img is not None else cv2.imread(frame.path, cv2.IMREAD_COLOR)
        if img is None:
            raise OSError(f'{frame.path}: image could not be read or decoded')
        h, w = img.shape[:2]
        problems = p2_problems(cam2img, (h, w), where, frame.path)
        if problems:
            raise ValueError(problems[0])
        for k, msg in enumerate(camera_warnings(cam2img, (w, h), self.input_size, where)):
            self._warn_once(f'camera{k}', msg)
        if normalize:
            img, p_in, shift, ratio = virtual_camera(img, cam2img)
        else:
            p_in, shift, ratio = cam2img, (0, 0), virtual_camera_scale(cam2img, (w, h))
            if ratio != 1.0:
                self._warn_once('focal', f'{where}: fx / W = {cam2img[0][0]:.0f} / {w} px is '
                                f'{ratio:.2f}x the training camera\'s: depths are off by about '
                                f'{1 / ratio:.2f}x without the virtual-camera normalisation')
        info = dict(img_path=frame.path, img=img, cam2img=p_in, sample_idx=frame.index,
                    sample_id=frame.name)
        data = self.pipeline(info)
        data['data_samples'].set_metainfo(dict(real_cam2img=cam2img, virtual_shift=shift,
                                               focal_ratio=ratio if normalize else 1.0))
        return data, shift

    @torch.no_grad()
    def run_batch(self, datas: list, shifts: Sequence[tuple[int, int]]) -> list:
        """Model on a batch of pipeline outputs; 2D boxes mapped back from the virtual camera
        to the real image. Returns the Det3DDataSamples (3D boxes: the camera frame)."""
        samples = self.model.test_step(self.collate_fn(datas))
        for sample, (dx, dy) in zip(samples, shifts):
            if dx or dy:
                bboxes = sample.pred_instances.bboxes
                bboxes[:, 0::2] -= dx
                bboxes[:, 1::2] -= dy
        return samples

    def pred2dict(self, frame: Frame, sample: Any) -> dict:
        """The plain-dict (JSON-lines) record of one frame's Det3DDataSample."""
        pred = sample.pred_instances_3d
        return prediction_record(
            frame, _raw_cam2img(sample), pred.bboxes_3d.tensor.cpu().numpy()[:, :7],
            pred.scores_3d.cpu().numpy(), pred.labels_3d.cpu().numpy(),
            sample.pred_instances.bboxes.cpu().numpy(), self.class_names,
            sample.metainfo.get('focal_ratio', 1.0), sample.metainfo.get('virtual_shift'))

    def kitti_lines(self, frame: Frame, sample: Any) -> list[str]:
        """KITTI result lines of one frame (``tools/test.py``'s format)."""
        return format_kitti_lines(prediction_to_kitti_anno(sample, self.class_names,
                                                           frame.name))

    def draw(self, frame: Frame, sample: Any, pred_score_thr: Optional[float] = None,
             draw_pred: bool = True, show_gt: bool = False) -> np.ndarray:
        """BGR canvas: the image with the projected boxes scoring ``>= pred_score_thr`` (None:
        the model's ``test_cfg.score_thr``) and a bird's-eye-view panel (``show_gt``: also
        ``../label_2/<stem>.txt`` of a KITTI-layout image, in green)."""
        img = frame.img if frame.img is not None else cv2.imread(frame.path)
        if img is None:
            raise OSError(f'{frame.path}: image could not be read')
        pred = sample.pred_instances_3d
        scores = pred.scores_3d.cpu().numpy()
        keep = (scores >= drawing_score_thr(self.model, pred_score_thr) if draw_pred
                else np.zeros(len(scores), bool))
        gt = read_label_boxes(frame.path) if show_gt and frame.video is None else None
        return draw_mono3d_result(img, _raw_cam2img(sample),
                                  pred.bboxes_3d.tensor.cpu().numpy()[keep, :7],
                                  pred.labels_3d.cpu().numpy()[keep], scores[keep],
                                  gt_boxes=gt, title=frame.name)

    def visualize(self, inputs: list, preds: list, return_vis: bool = False,
                  show: bool = False, wait_time: int = 0, draw_pred: bool = True,
                  pred_score_thr: Optional[float] = None, img_out_dir: str = '',
                  no_save_vis: bool = False) -> Optional[list]:
        """Draw predictions (mmdet3d's ``visualize`` arguments).

        Args:
            inputs: the frames (:class:`Frame`, image paths or BGR arrays), as passed.
            preds: their Det3DDataSamples (``out['data_samples']``).
            pred_score_thr: score threshold of the drawn boxes (None: the model's
                ``test_cfg.score_thr``).
            img_out_dir: write ``<name>.png`` there ('' or ``no_save_vis``: not written).
            show: display with ``cv2.imshow`` (``wait_time`` ms).

        Returns:
            The canvases when ``return_vis``, else None.
        """
        frames = [f if isinstance(f, Frame) else
                  Frame(i, f'array_{i:06d}', f'<array {i}>', img=f) if isinstance(f, np.ndarray)
                  else Frame(i, osp.splitext(osp.basename(f))[0], f)
                  for i, f in enumerate(inputs)]
        out = []
        for frame, sample in zip(frames, preds):
            canvas = self.draw(frame, sample, pred_score_thr, draw_pred)
            if img_out_dir and not no_save_vis:
                os.makedirs(img_out_dir, exist_ok=True)
                cv2.imwrite(osp.join(img_out_dir, frame.name + '.png'), canvas)
            if show:
                cv2.imshow('MonoDLE', canvas)
                cv2.waitKey(wait_time)
            if return_vis:
                out.append(canvas)
        return out if return_vis else None

    def postprocess(self, preds: list, visualization: Optional[list] = None,
                    return_datasample: bool = False, print_result: bool = False,
                    no_save_pred: bool = False, pred_out_dir: str = '') -> dict:
        """``{'predictions': plain dicts (or the data samples), 'visualization': ...}``;
        ``preds`` are ``(frame, sample)`` pairs."""
        records = [self.pred2dict(f, s) for f, s in preds]
        if print_result:
            for r in records:
                print(json.dumps(r))
        return dict(predictions=[s for _, s in preds] if return_datasample else records,
                    visualization=visualization)

    # ------------------------------------------------------------------ the call
    def __call__(self, inputs: Any, intrinsics: Any = None, batch_size: int = 1,
                 return_datasamples: bool = False, out_dir: str = '', kitti_dir: str = '',
                 jsonl: str = '', pred_score_thr: Optional[float] = None,
                 draw_pred: bool = True,
                 show: bool = False, wait_time: int = 0, return_vis: bool = False,
                 no_save_vis: bool = False, no_save_pred: bool = False,
                 print_result: bool = False, normalize_camera: Optional[bool] = None,
                 show_gt: bool = False) -> dict:
        """Detect on every frame of ``inputs``.

        Args:
            inputs: an image, a folder, a glob, a video, a BGR array, or a list of these.
            intrinsics: any form of :class:`~monodle_kitti.intrinsics.Intrinsics`
                (None: KITTI layout ``../calib/<stem>.txt``).
            batch_size: frames per forward pass (results equal batch size 1's).
            out_dir: drawings: ``<name>.png`` per image, ``<video stem>.mp4`` per video.
            kitti_dir: KITTI result lines, ``<name>.txt`` per frame (all detections).
            jsonl: one JSON-lines file, a record per frame (all detections).
            pred_score_thr: score threshold of the drawn boxes only (None: the model's
                ``test_cfg.score_thr``, the threshold it detects at).
            no_save_vis / no_save_pred: skip the drawings / the result files.
            normalize_camera: override the constructor's switch.
            show_gt: draw KITTI labels (``../label_2/<stem>.txt``) in green where present.

        Returns:
            ``{'predictions': [dict per frame] (the Det3DDataSamples if return_datasamples),
            'data_samples': [Det3DDataSample per frame], 'visualization': [canvas per frame]
            if return_vis}``.
        """
        if int(batch_size) < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        normalize = self.normalize_camera if normalize_camera is None else normalize_camera
        intr = as_intrinsics(intrinsics)
        sources = list_sources(inputs)
        bar = ProgressBar(count_frames(sources), file=sys.stderr) if self.show_progress \
            else None
        draw = bool(out_dir) and not no_save_vis
        kitti_dir = '' if no_save_pred else kitti_dir
        jsonl = '' if no_save_pred else jsonl
        for folder in (out_dir if draw else '', kitti_dir, osp.dirname(jsonl)):
            if folder:
                os.makedirs(folder, exist_ok=True)
        jsonl_file = open(jsonl, 'w') if jsonl else None
        writer = DrawingWriter(out_dir) if draw else None
        pairs, canvases = [], []
        try:
            batch: list = []
            frames = iter_frames(sources)
            while True:
                frame = next(frames, None)
                if frame is not None:
                    batch.append((frame, *self.prepare(frame, intr, normalize)))
                if batch and (frame is None or len(batch) == int(batch_size)):
                    samples = self.run_batch([d for _, d, _ in batch], [s for _, _, s in batch])
                    for (fr, _, _), sample in zip(batch, samples):
                        pairs.append((fr, sample))
                        if kitti_dir:
                            lines = self.kitti_lines(fr, sample)
                            with open(osp.join(kitti_dir, fr.name + '.txt'), 'w') as f:
                                f.write('\n'.join(lines) + ('\n' if lines else ''))
                        if jsonl_file:
                            jsonl_file.write(json.dumps(self.pred2dict(fr, sample)) + '\n')
                        if draw or return_vis or show:
                            canvas = self.draw(fr, sample, pred_score_thr, draw_pred, show_gt)
                            if writer is not None:
                                writer.write(fr, canvas)
                            if show:
                                cv2.imshow('MonoDLE', canvas)
                                cv2.waitKey(wait_time)
                            if return_vis:
                                canvases.append(canvas)
                        fr.img = None  # a video frame's pixels are not kept
                        if bar is not None:
                            bar.update()
                    batch = []
                if frame is None:
                    break
        finally:
            if writer is not None:
                writer.close()
            if jsonl_file is not None:
                jsonl_file.close()
            if bar is not None:  # ends the bar's line (an error message then starts its own)
                sys.stderr.write('\n')
                sys.stderr.flush()
        out = self.postprocess(pairs, canvases if return_vis else None, return_datasamples,
                               print_result)
        out['data_samples'] = [s for _, s in pairs]
        out['frames'] = [f for f, _ in pairs]
        return out


__all__ = ['MonoDLEInferencer']
