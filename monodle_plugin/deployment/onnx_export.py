"""Export a MonoDLE model (backbone + neck + head + the box coder's decoding) to ONNX and check
it with onnxruntime.

The graph is the whole detector, as mmdeploy exports detectors: inputs ``img`` (B, 3, H, W)
float32 (normalised, :func:`~.numpy_runtime.preprocess`), ``cam2img`` (B, 4, 4) float64 (P2 of
the raw image) and, by the model's ``test_cfg.decode_mode``, ``ori_shape`` (B, 2) int64 (raw
image H, W; 'official') or ``inv_affine_mat`` (B, 3, 3) float64 (network input -> raw image
pixels; 'affine'); outputs the ``topk`` (K) peaks of each image, best heatmap score first
(:data:`~.numpy_runtime.DETECTION_NAMES`, traced from ``MonoDLEBBoxCoder.select_peaks``,
``gather_topk`` and ``decode_boxes``: the decoder of ``tools/test.py``), then the head's seven
raw maps (:data:`~.numpy_runtime.OUTPUT_NAMES`, for checks and the int8 tooling). The score
threshold is applied outside the graph (:func:`~.numpy_runtime.select_detections`), so one
file serves any threshold. The pre-processing parameters (input size, mean / std, class names,
default threshold, decode mode) are stored in the file's metadata under the key ``monodle``
(JSON, :data:`~.numpy_runtime.META_KEYS`).
"""
from __future__ import annotations

import json
import os
import warnings

import numpy as np
import torch
from torch import Tensor, nn

from monodle_kitti.numpy_runtime import (
    DECODE_INPUTS,
    DETECTION_NAMES,
    EXAMPLE_HW,
    EXAMPLE_P2,
    META_KEYS,
    OUTPUT_NAMES,
    graph_feeds,
    ort_session,
    select_detections,
    whole_image_affine,
)

#: ONNX opset of the export (onnxruntime >= 1.14 runs it).
OPSET = 17
#: the backbones' largest stride: input sizes are multiples of it
STRIDE = 32


class MonoDLEExportWrapper(nn.Module):
    """The exported graph: ``(img, cam2img, ori_shape | inv_affine_mat)`` -> the K decoded
    peaks of each image (:data:`DETECTION_NAMES`) + the seven raw head maps
    (:data:`OUTPUT_NAMES`).

    The decoding is the model's own box coder with its ``test_cfg`` (``topk``, ``nms_kernel``,
    ``decode_mode``), without the score threshold.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.decode_mode = str(model.bbox_head.test_cfg['decode_mode'])

    def forward(self, img: Tensor, cam2img: Tensor, raw_geometry: Tensor
                ) -> tuple[Tensor, ...]:
        """``raw_geometry``: ``ori_shape`` (B, 2) ('official') or ``inv_affine_mat`` (B, 3, 3)
        ('affine')."""
        head = self.model.bbox_head
        outs = head(self.model.extract_feat({'imgs': img}))
        cfg, coder = head.test_cfg, head.bbox_coder
        peaks = coder.select_peaks(outs['heatmap'], cfg['topk'], cfg['nms_kernel'])
        pred = coder.gather_topk(outs, peaks)
        official = self.decode_mode == 'official'
        boxes = coder.decode_boxes(
            pred, cam2img, tuple(outs['heatmap'].shape[-2:]), self.decode_mode,
            ori_hw=raw_geometry if official else None,
            inv_affine=None if official else raw_geometry)
        dets = dict(boxes, scores_3d=pred['scores'].float(), labels_3d=pred['labels'],
                    heatmap_scores=pred['heatmap_scores'].float(), peaks=pred['peaks'])
        return tuple(dets[n] for n in DETECTION_NAMES) + tuple(outs[n] for n in OUTPUT_NAMES)


def _coder_attr(head: nn.Module, name: str):
    """Decode parameter ``name`` from the head or its bbox coder, whichever holds it."""
    for owner in (getattr(head, 'bbox_coder', None), head):
        if owner is not None and hasattr(owner, name):
            return getattr(owner, name)
    raise AttributeError(f'export: the head has no {name!r} (neither on the head nor on its '
                         'bbox_coder)')


def export_meta(model: nn.Module, input_size: tuple[int, int]) -> dict:
    """The pre-processing / decoding parameters stored in the ONNX file (see ``META_KEYS``).

    Args:
        model: the MonoDLE detector.
        input_size: network input (W, H) of the test pipeline, pixels.
    """
    pre = model.data_preprocessor
    head = model.bbox_head
    test_cfg = dict(_coder_attr(head, 'test_cfg'))
    decode_mode = str(test_cfg['decode_mode'])
    if decode_mode not in DECODE_INPUTS:
        raise ValueError(f'export: test_cfg.decode_mode must be one of {tuple(DECODE_INPUTS)}, '
                         f'got {decode_mode!r}')
    meta = dict(
        input_size=[int(input_size[0]), int(input_size[1])],
        mean=[float(v) for v in pre.mean.view(-1)] if getattr(pre, '_enable_normalize', True)
        else [0.0, 0.0, 0.0],
        std=[float(v) for v in pre.std.view(-1)] if getattr(pre, '_enable_normalize', True)
        else [1.0, 1.0, 1.0],
        bgr_to_rgb=bool(getattr(pre, '_channel_conversion', False)),
        class_names=list(_coder_attr(head, 'class_names')),
        topk=int(test_cfg['topk']),
        score_thr=float(test_cfg['score_thr']),
        decode_mode=decode_mode,
        inputs=['img', 'cam2img', DECODE_INPUTS[decode_mode]],
        detections=list(DETECTION_NAMES),
        outputs=list(OUTPUT_NAMES),
    )
    assert set(meta) == set(META_KEYS)
    return meta


def prepare_for_export(model: nn.Module) -> nn.Module:
    """Eval mode, CPU, plain NCHW memory format (the CPU channels_last switch is a runtime
    choice of PyTorch, not part of the graph)."""
    model = model.eval().cpu()
    if hasattr(model.backbone, 'channels_last_inference'):
        model.backbone.channels_last_inference = False
    if getattr(model, 'channels_last', False):
        model.channels_last = False
        model.to(memory_format=torch.contiguous_format)
    return model


def example_feeds(meta: dict, batch: int = 1, hw: tuple[int, int] | None = None,
                  seed: int = 0) -> dict[str, np.ndarray]:
    """Graph inputs for ``meta``'s model: a random ``img`` (``hw`` = network input (H, W),
    default the exported one) and a KITTI camera (P2, raw size and the test warp's inverse
    affine of a 375 x 1242 frame), ``batch`` copies."""
    h, w = hw or meta['input_size'][::-1]
    img = np.random.default_rng(seed).standard_normal((batch, 3, h, w)).astype(np.float32)
    affine = whole_image_affine(EXAMPLE_HW[1], EXAMPLE_HW[0], w, h)
    return graph_feeds(meta, img, [EXAMPLE_P2] * batch, [EXAMPLE_HW] * batch,
                       [affine] * batch)


def _atan2_symbolic(g, y, x):
    """``aten::atan2`` for the export: onnxruntime has no float64 ``Atan`` kernel (the
    decoding's ``ry = alpha + atan2(u - cu, fu)`` runs in float64). A float64 atan2 becomes
    PyTorch's float32 decomposition ``t0`` refined by one exact step in float64:
    ``t0 + r``, ``r = (y cos t0 - x sin t0) / (x cos t0 + y sin t0)`` (= tan(t - t0), |r| ~
    1e-7, so the error left is ~r^3: float64 rounding). Other dtypes keep PyTorch's."""
    from torch.onnx import symbolic_opset9 as opset9
    if y.type().scalarType() != 'Double':
        return opset9.atan2(g, y, x)
    float32, float64 = 1, 11  # onnx.TensorProto.FLOAT / DOUBLE
    t0 = g.op('Cast', opset9.atan2(g, g.op('Cast', y, to_i=float32),
                                   g.op('Cast', x, to_i=float32)), to_i=float64)
    sin, cos = g.op('Sin', t0), g.op('Cos', t0)
    num = g.op('Sub', g.op('Mul', y, cos), g.op('Mul', x, sin))
    den = g.op('Add', g.op('Mul', x, cos), g.op('Mul', y, sin))
    return g.op('Add', t0, g.op('Div', num, den))


def export_onnx(model: nn.Module, out_path: str, input_size: tuple[int, int],
                dynamic: bool = False, opset: int = OPSET) -> dict:
    """Write ``out_path`` (ONNX) for ``model`` at ``input_size`` (W, H); returns the metadata.

    ``dynamic``: batch, height and width are free dimensions (H and W must stay multiples of
    the backbone's largest stride, 32); otherwise the graph is fixed at batch 1 and (H, W).
    """
    import onnx

    model = prepare_for_export(model)
    wrapper = MonoDLEExportWrapper(model).eval()
    w, h = int(input_size[0]), int(input_size[1])
    meta = export_meta(model, (w, h))
    feeds = example_feeds(meta)
    args = tuple(torch.from_numpy(feeds[n]) for n in meta['inputs'])
    names = list(DETECTION_NAMES) + list(OUTPUT_NAMES)
    axes = None
    if dynamic:
        axes = {n: {0: 'batch'} for n in meta['inputs'][1:] + list(DETECTION_NAMES)}
        axes['img'] = {0: 'batch', 2: 'height', 3: 'width'}
        axes.update({n: {0: 'batch', 2: 'feat_height', 3: 'feat_width'} for n in OUTPUT_NAMES})
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    torch.onnx.register_custom_op_symbolic('aten::atan2', _atan2_symbolic, opset)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter('ignore')  # tracer warnings about Python-side shape checks
            torch.onnx.export(wrapper, args, out_path, input_names=list(meta['inputs']),
                              output_names=names, dynamic_axes=axes,
                              opset_version=opset, do_constant_folding=True, dynamo=False)
    finally:
        torch.onnx.unregister_custom_op_symbolic('aten::atan2', opset)
    proto = onnx.load(out_path)
    got = [i.name for i in proto.graph.input]
    if got != meta['inputs']:
        raise RuntimeError(f'export: graph inputs {got}, expected {meta["inputs"]}')
    entry = proto.metadata_props.add()
    entry.key, entry.value = 'monodle', json.dumps(meta)
    onnx.checker.check_model(proto)
    onnx.save(proto, out_path)
    return meta


def max_relative_errors(reference: dict, other: dict) -> dict:
    """Per raw branch ``max|other - reference| / max|reference|`` (scale-relative error)."""
    errs = {}
    for name in OUTPUT_NAMES:
        ref = np.asarray(reference[name], np.float64)
        diff = np.abs(np.asarray(other[name], np.float64) - ref).max()
        errs[name] = float(diff / max(np.abs(ref).max(), 1e-12))
    return errs


def torch_outputs(model: nn.Module, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The PyTorch model's graph outputs (detections + raw maps) for the graph inputs
    ``feeds`` (numpy in, numpy out): what the exported file computes."""
    wrapper = MonoDLEExportWrapper(prepare_for_export(model)).eval()
    names = list(DETECTION_NAMES) + list(OUTPUT_NAMES)
    inputs = ['img', 'cam2img', DECODE_INPUTS[wrapper.decode_mode]]
    with torch.no_grad():
        outs = wrapper(*(torch.from_numpy(np.asarray(feeds[n])) for n in inputs))
    return {n: o.numpy() for n, o in zip(names, outs)}


def detection_errors(reference: dict, other: dict, score_thr: float) -> dict:
    """Largest absolute differences between two sets of graph outputs' detections above
    ``score_thr`` (heatmap score), per image, matched by (label, peak cell) (the order of
    equal heatmap scores, e.g. saturated peaks, is arbitrary).

    Returns ``{'missing': detections of one side without partner, 'bboxes_3d': ..., 'scores_3d':
    ..., 'bboxes_2d': ..., 'alphas': ...}`` (max |diff|, metres / radians / pixels).
    """
    errs = dict(missing=0, bboxes_3d=0.0, scores_3d=0.0, bboxes_2d=0.0, alphas=0.0)
    for b in range(len(reference['scores_3d'])):
        per = [select_detections(out, score_thr, image=b) for out in (reference, other)]
        keys = [{(int(lab), int(x), int(y)): i for i, (lab, (x, y)) in
                 enumerate(zip(d['labels_3d'], d['peaks']))} for d in per]
        errs['missing'] += len(set(keys[0]) ^ set(keys[1]))
        for key in set(keys[0]) & set(keys[1]):
            i, j = keys[0][key], keys[1][key]
            for name in ('bboxes_3d', 'scores_3d', 'bboxes_2d', 'alphas'):
                diff = np.abs(np.float64(per[0][name][i]) - np.float64(per[1][name][j])).max()
                errs[name] = max(errs[name], float(diff))
    return errs


#: verify_onnx: largest differences allowed between onnxruntime's and PyTorch's detections,
#: (metres, score, pixels, radians); the KITTI result lines print 4 decimals.
DETECTION_TOLERANCE = dict(bboxes_3d=1e-3, scores_3d=1e-4, bboxes_2d=1e-2, alphas=1e-4)


def verify_onnx(model: nn.Module, onnx_path: str, inputs: list[dict[str, np.ndarray]],
                tolerance: float = 1e-4, score_thr: float | None = None) -> dict:
    """Run PyTorch and onnxruntime on the same graph inputs; raise if they differ.

    Args:
        model: the PyTorch model the file was exported from.
        onnx_path: the exported file.
        inputs: graph inputs (``{name: array}``, :func:`example_feeds` or
            :func:`~.numpy_runtime.graph_feeds`).
        tolerance: largest max relative error of each raw branch.
        score_thr: detections compared: heatmap score ``>=`` it (default: the model's
            ``test_cfg.score_thr``); they must form the same (label, peak) set, with values
            within :data:`DETECTION_TOLERANCE`.

    Returns:
        ``{'branches': {name: worst scale-relative error}, 'detections': {'missing': count,
        name: worst |diff|}}`` over ``inputs``.
    """
    sess = ort_session(onnx_path)
    if score_thr is None:
        score_thr = float(model.bbox_head.test_cfg['score_thr'])
    worst = dict.fromkeys(OUTPUT_NAMES, 0.0)
    det_worst = dict(missing=0, bboxes_3d=0.0, scores_3d=0.0, bboxes_2d=0.0, alphas=0.0)
    names = [o.name for o in sess.get_outputs()]
    for feeds in inputs:
        ref = torch_outputs(model, feeds)
        got = dict(zip(names, sess.run(names, {i.name: feeds[i.name]
                                               for i in sess.get_inputs()})))
        for name, err in max_relative_errors(ref, got).items():
            worst[name] = max(worst[name], err)
        for name, err in detection_errors(ref, got, score_thr).items():
            det_worst[name] = max(det_worst[name], err) if name != 'missing' else \
                det_worst[name] + err
    bad = {k: v for k, v in worst.items() if v > tolerance}
    bad.update({k: v for k, v in det_worst.items()
                if v > DETECTION_TOLERANCE.get(k, 0)})
    if bad:
        raise AssertionError(f'{onnx_path}: onnxruntime differs from PyTorch beyond '
                             f'{tolerance:g} (raw maps, max relative error) / '
                             f'{DETECTION_TOLERANCE} (detections) on {bad}')
    return dict(branches=worst, detections=det_worst)


def build_model_for_export(config: str | None, checkpoint: str | None,
                           cfg_options: dict | None = None) -> tuple[nn.Module, object]:
    """(MonoDLE model with the checkpoint's weights, config) for export.

    ``config=None``: the config stored in the checkpoint (``meta.cfg``, parsed as plain data).

    Pretrained-backbone loading is switched off (``UltralyticsBackbone`` / ``TIMMBackbone``
    ``pretrained=False``, ``init_cfg=None``): the checkpoint holds every weight.
    ``checkpoint=None`` keeps random weights (speed measurements only).
    """
    from mmdet3d.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from ..utils.checkpoint_loading import resolve_config

    for path, what in ((config, 'config file'), (checkpoint, 'checkpoint')):
        if path is not None and not os.path.isfile(path):
            raise FileNotFoundError(f'{what} not found: {path}')
    if checkpoint is None:  # random weights: the config file alone
        cfg = Config.fromfile(config)
        if cfg_options:
            from ..utils.config_checks import check_cfg_option_keys
            check_cfg_option_keys(cfg, cfg_options, config)  # unknown keys, nested typos included
            cfg.merge_from_dict(cfg_options)
        from ..utils.distill_switches import apply_distill_switches
        apply_distill_switches(cfg)  # e.g. the uncertainty branch of a +DA3+U config
    else:
        cfg, _ = resolve_config(config, checkpoint, cfg_options)
    if cfg.get('custom_imports'):  # e.g. mmpretrain.models for registry backbones
        from mmengine.utils import import_modules_from_strings
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'mmdet3d'))
    model_cfg = cfg.model.copy()
    backbone = model_cfg.backbone
    if 'pretrained' in backbone or str(backbone.get('type', '')).endswith(
            ('UltralyticsBackbone', 'TIMMBackbone')):
        backbone.pretrained = False
    backbone.init_cfg = None
    model = MODELS.build(model_cfg)
    if checkpoint is not None:
        from ..utils.checkpoint_loading import load_weights_strict
        # weights_only, every key must match
        load_weights_strict(model, checkpoint, config or f'{checkpoint}:meta.cfg')
    return model.eval(), cfg


def check_input_size(size, source: str) -> tuple[int, int]:
    """``size`` as the network input ``(W, H)`` in pixels: two positive integers, else a
    one-line :class:`~monodle_plugin.utils.cli.UserError` naming ``source`` (the flag or the
    config key it came from); ``torch.zeros`` of a negative size was a RuntimeError deep in
    the export."""
    from ..utils.cli import UserError
    try:
        w, h = (int(v) for v in size)
        ok = all(float(v) == int(v) for v in size)
    except (TypeError, ValueError):
        w = h = 0
        ok = False
    if not ok or w < 1 or h < 1:
        raise UserError(f'{source}: the network input size (W, H) must be two positive '
                        f'integers (pixels, multiples of {STRIDE} for the backbone), got '
                        f'{_size_text(size)}; e.g. --input-size 1280 384')
    return w, h


def _size_text(size) -> str:
    try:
        return ' x '.join(str(v) for v in size)
    except TypeError:
        return repr(size)


def pipeline_input_size(cfg) -> tuple[int, int]:
    """Network input (W, H) of the config's test pipeline (``MonoDLEAffineAug.output_size``),
    checked with :func:`check_input_size` (the message names the config key)."""
    for i, step in enumerate(cfg.test_dataloader.dataset.pipeline):
        if step.get('type') == 'MonoDLEAffineAug':
            size = step.get('output_size', (1280, 384))
            source = (f'{getattr(cfg, "filename", None) or "the config"}: '
                      f'test_dataloader.dataset.pipeline.{i}.output_size')
            return check_input_size(size, source)
    raise ValueError('the config\'s test pipeline has no MonoDLEAffineAug: give --input-size W H')
