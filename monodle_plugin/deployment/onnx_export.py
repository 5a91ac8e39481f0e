"""Export a MonoDLE model (backbone + neck + head) to ONNX and check it with onnxruntime.

The graph maps the normalised image ``img`` (B, 3, H, W) float32 to the head's seven raw branch
maps (outputs named as :data:`OUTPUT_NAMES`, stride 4, pre-activation). Decoding stays outside
the graph (top-k and per-detection geometry with data-dependent sizes): it is the small numpy
step :func:`monodle_plugin.deployment.numpy_runtime.decode`, whose parameters (input size,
mean / std, class names, thresholds, decode mode) are stored in the file's metadata under the key
``monodle`` (JSON).
"""
from __future__ import annotations

import json
import os
import warnings

import numpy as np
import torch
from torch import Tensor, nn

from .numpy_runtime import META_KEYS, OUTPUT_NAMES, ort_session

#: ONNX opset of the export (onnxruntime >= 1.14 runs it).
OPSET = 17
#: the backbones' largest stride: input sizes are multiples of it
STRIDE = 32


class MonoDLEExportWrapper(nn.Module):
    """``img`` (B, 3, H, W) -> the seven raw head maps in :data:`OUTPUT_NAMES` order."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, img: Tensor) -> tuple[Tensor, ...]:
        outs = self.model.bbox_head(self.model.extract_feat({'imgs': img}))
        return tuple(outs[name] for name in OUTPUT_NAMES)


def _coder_attr(head: nn.Module, name: str):
    """Decode parameter ``name`` from the head or its bbox coder, whichever holds it."""
    for owner in (getattr(head, 'bbox_coder', None), head):
        if owner is not None and hasattr(owner, name):
            return getattr(owner, name)
    raise AttributeError(f'export: the head has no {name!r} (neither on the head nor on its '
                         'bbox_coder)')


def export_meta(model: nn.Module, input_size: tuple[int, int]) -> dict:
    """The decode / pre-processing parameters stored in the ONNX file (see ``META_KEYS``).

    Args:
        model: the MonoDLE detector.
        input_size: network input (W, H) of the test pipeline, pixels.
    """
    pre = model.data_preprocessor
    head = model.bbox_head
    test_cfg = dict(_coder_attr(head, 'test_cfg'))
    meta = dict(
        input_size=[int(input_size[0]), int(input_size[1])],
        mean=[float(v) for v in pre.mean.view(-1)] if getattr(pre, '_enable_normalize', True)
        else [0.0, 0.0, 0.0],
        std=[float(v) for v in pre.std.view(-1)] if getattr(pre, '_enable_normalize', True)
        else [1.0, 1.0, 1.0],
        bgr_to_rgb=bool(getattr(pre, '_channel_conversion', False)),
        class_names=list(_coder_attr(head, 'class_names')),
        mean_size=np.asarray(_coder_attr(head, 'mean_size'), np.float64).tolist(),
        num_heading_bins=int(_coder_attr(head, 'num_heading_bins')),
        topk=int(test_cfg['topk']),
        score_thr=float(test_cfg['score_thr']),
        nms_kernel=int(test_cfg['nms_kernel']),
        decode_mode=str(test_cfg['decode_mode']),
        down_ratio=int(_coder_attr(head, 'down_ratio')),
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


def export_onnx(model: nn.Module, out_path: str, input_size: tuple[int, int],
                dynamic: bool = False, opset: int = OPSET) -> dict:
    """Write ``out_path`` (ONNX) for ``model`` at ``input_size`` (W, H); returns the metadata.

    ``dynamic``: batch, height and width are free dimensions (H and W must stay multiples of
    the backbone's largest stride, 32); otherwise the graph is fixed at (1, 3, H, W).
    """
    import onnx

    model = prepare_for_export(model)
    wrapper = MonoDLEExportWrapper(model).eval()
    w, h = int(input_size[0]), int(input_size[1])
    dummy = torch.zeros(1, 3, h, w)
    axes = None
    if dynamic:
        axes = {'img': {0: 'batch', 2: 'height', 3: 'width'}}
        axes.update({n: {0: 'batch', 2: 'feat_height', 3: 'feat_width'} for n in OUTPUT_NAMES})
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore')  # tracer warnings about Python-side shape checks
        torch.onnx.export(wrapper, (dummy,), out_path, input_names=['img'],
                          output_names=list(OUTPUT_NAMES), dynamic_axes=axes,
                          opset_version=opset, do_constant_folding=True, dynamo=False)
    meta = export_meta(model, (w, h))
    proto = onnx.load(out_path)
    entry = proto.metadata_props.add()
    entry.key, entry.value = 'monodle', json.dumps(meta)
    onnx.checker.check_model(proto)
    onnx.save(proto, out_path)
    return meta


def max_relative_errors(reference: dict, other: dict) -> dict:
    """Per branch ``max|other - reference| / max|reference|`` (scale-relative error)."""
    errs = {}
    for name in OUTPUT_NAMES:
        ref = np.asarray(reference[name], np.float64)
        diff = np.abs(np.asarray(other[name], np.float64) - ref).max()
        errs[name] = float(diff / max(np.abs(ref).max(), 1e-12))
    return errs


def torch_outputs(model: nn.Module, img: np.ndarray) -> dict:
    """The PyTorch model's seven raw maps for one input blob (numpy in, numpy out)."""
    wrapper = MonoDLEExportWrapper(prepare_for_export(model)).eval()
    with torch.no_grad():
        outs = wrapper(torch.from_numpy(img))
    return {n: o.numpy() for n, o in zip(OUTPUT_NAMES, outs)}


def verify_onnx(model: nn.Module, onnx_path: str, inputs: list[np.ndarray],
                tolerance: float = 1e-4) -> dict:
    """Run PyTorch and onnxruntime on the same inputs; raise if a branch differs.

    Returns the worst per-branch scale-relative error over ``inputs``.
    """
    sess = ort_session(onnx_path)
    worst = dict.fromkeys(OUTPUT_NAMES, 0.0)
    for img in inputs:
        ref = torch_outputs(model, img)
        got = dict(zip(OUTPUT_NAMES, sess.run(list(OUTPUT_NAMES), {'img': img})))
        for name, err in max_relative_errors(ref, got).items():
            worst[name] = max(worst[name], err)
    bad = {k: v for k, v in worst.items() if v > tolerance}
    if bad:
        raise AssertionError(f'{onnx_path}: onnxruntime differs from PyTorch beyond '
                             f'{tolerance:g} (max relative error) on {bad}')
    return worst


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
        from ..engine.distill_switches import apply_distill_switches
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
