"""Static int8 quantisation of an exported MonoDLE ONNX model, and its measured agreement with
the float model.

:func:`quantize_int8` turns the float file of ``tools/deployment/export_onnx.py`` into an int8
one with onnxruntime's own tooling (``onnxruntime.quantization.quant_pre_process`` +
``quantize_static``): weights int8 per output channel, activations uint8 with ranges calibrated
(min / max) on real frames through the deployment pre-processing
(:func:`~monodle_kitti.numpy_runtime.preprocess`, the same as inference). The
layers listed by :func:`float_layers` stay float: the final 1x1 convolution of every head branch
(the raw map outputs: heatmap logits, depth and its log-variance, offsets, sizes, heading) and
any layer the caller adds; the decoding part of the graph (:func:`decoding_nodes`: top-k,
gathers, float64 geometry) is never quantised. The int8 file keeps the float file's metadata
(``monodle``, unchanged) and adds ``monodle_int8`` (JSON: format, data types, calibration, the
float layers), so ``tools/deployment/ort_infer.py`` runs either file.

:func:`measure_agreement` runs both files on the same frames and reports what a user of the
detections sees: per-branch errors of the raw maps, matched detections (3D centre distance,
depth and score changes), detections lost or gained, and Car AP40 of both against the labels.
:data:`AGREEMENT_BOUNDS` are the limits that ``export_onnx.py --int8 --verify`` and the tests
hold the int8 model to (measured values in its comments).

Everything here needs numpy, OpenCV, onnx and onnxruntime only (no torch), except the AP
computation, which imports :mod:`monodle_plugin.evaluation` when labels are given.
"""
from __future__ import annotations

import json
import os
import os.path as osp
import tempfile
from typing import Sequence

import cv2
import numpy as np

from monodle_kitti.kitti_io import detections_to_kitti_anno, format_kitti_lines
from monodle_kitti.numpy_runtime import (
    OUTPUT_NAMES,
    calib_path_for,
    frame_feeds,
    kitti_sibling,
    list_images,
    ort_session,
    parse_meta,
    read_p2,
    run_graph,
    select_detections,
)

#: Metadata key of the quantisation record in the int8 file (JSON).
INT8_META_KEY = 'monodle_int8'
#: onnxruntime quantisation formats: 'qoperator' (QLinearConv, QLinearMul... operators) or
#: 'qdq' (QuantizeLinear / DequantizeLinear pairs around float operators, fused by onnxruntime
#: at load time).
FORMATS = ('qoperator', 'qdq')
#: Default format: the faster one on the development CPU (AVX2, no VNNI); see the table in
#: docs/en/deployment.md.
DEFAULT_FORMAT = 'qoperator'
#: Default number of calibration frames (spread evenly over the sorted folder).
DEFAULT_CALIB_COUNT = 32


def int8_path_for(float_path: str) -> str:
    """``model.onnx`` -> ``model.int8.onnx`` (next to it)."""
    root, ext = osp.splitext(float_path)
    return f'{root}.int8{ext or ".onnx"}'


def pick_calibration_images(source: str, count: int | None = None) -> list[str]:
    """``count`` images of ``source`` (a file or folder), evenly spread over the sorted list;
    ``None``: :data:`DEFAULT_CALIB_COUNT`, or all when the folder holds fewer. A count larger
    than the folder is an error naming both."""
    files = list_images(source)
    if count is None:
        count = min(DEFAULT_CALIB_COUNT, len(files))
    if count < 1:
        raise ValueError(f'--calib-count must be >= 1, got {count}')
    if count > len(files):
        raise ValueError(f'--calib-count {count}: {source} holds only {len(files)} image(s); '
                         f'give --calib-count {len(files)} or a larger folder')
    idx = np.unique(np.linspace(0, len(files) - 1, count).round().astype(int))
    return [files[i] for i in idx]


class FrameReader:
    """onnxruntime calibration reader: the graph inputs of each image (:func:`frame_feeds`:
    ``img`` through :func:`preprocess` with the exported model's metadata, input size, mean /
    std, channel order; its ``../calib`` P2 when there is one, else KITTI's).

    (A ``CalibrationDataReader`` by duck typing: onnxruntime's abstract class accepts any
    class with ``get_next``.)
    """

    def __init__(self, images: Sequence[str], meta: dict) -> None:
        self.images = list(images)
        self.meta = meta
        self._next = 0

    def get_next(self) -> dict | None:
        if self._next >= len(self.images):
            return None
        path = self.images[self._next]
        self._next += 1
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise OSError(f'{path}: calibration image could not be read or decoded')
        calib = kitti_sibling(path, 'calib', '.txt')
        return frame_feeds(img, self.meta, read_p2(calib) if osp.isfile(calib) else None)

    def __len__(self) -> int:
        return len(self.images)

    def rewind(self) -> None:
        self._next = 0


def layer_name(node_name: str) -> str:
    """The PyTorch module path of an exported node, from the scopes torch writes into its
    name: ``/bbox_head/depth/depth.2/Conv`` -> ``bbox_head.depth.2``,
    ``/backbone/model.4/m.0/cv1/conv/Conv`` -> ``backbone.model.4.m.0.cv1.conv`` (a scope that
    extends the previous one, ``depth`` -> ``depth.2``, replaces it). Names without scopes
    (``Conv_3``) are returned unchanged."""
    parts = [p for p in node_name.split('/') if p]
    if node_name[:1] != '/' or len(parts) < 2:
        return node_name
    path: list[str] = []
    for scope in parts[:-1]:  # the last part is the operator (Conv, Mul_1...)
        if path and scope.startswith(path[-1] + '.'):
            path[-1] = scope
        else:
            path.append(scope)
    return '.'.join(path)


def output_layers(model) -> list[str]:
    """ONNX node names of the operators that write the raw map outputs (the final 1x1
    convolution of each head branch, :data:`OUTPUT_NAMES`; through a float -> float ``Cast``),
    in output order."""
    producer = {out: node for node in model.graph.node for out in node.output}
    layers = []
    for out in model.graph.output:
        node = producer.get(out.name) if out.name in OUTPUT_NAMES else None
        while node is not None and node.op_type in ('Cast', 'Identity'):  # the tracer's
            node = producer.get(node.input[0])  # .float() of a float map: a no-op Cast
        if node is not None:
            layers.append(node.name)
    return layers


def decoding_nodes(model) -> list[str]:
    """ONNX node names of the decoding part of the graph: every node that the raw map outputs
    (:data:`OUTPUT_NAMES`) do not depend on (top-k, gathers, the float64 geometry)."""
    producer = {out: node for node in model.graph.node for out in node.output}
    network, todo = set(), [o.name for o in model.graph.output if o.name in OUTPUT_NAMES]
    while todo:
        node = producer.get(todo.pop())
        if node is not None and node.name not in network:
            network.add(node.name)
            todo.extend(node.input)
    return [n.name for n in model.graph.node if n.name not in network]


def float_layers(model, keep_float: Sequence[str] = (), outputs: bool = True) -> list[str]:
    """Node names kept float: :func:`output_layers` (unless ``outputs=False``), plus every node
    of each ``keep_float``
    module (a module path such as ``bbox_head.depth.0`` or ``backbone.model.0``: the nodes of
    that module and its children) or ONNX node name. A name matching no node is an error
    listing the convolutions."""
    keep = list(output_layers(model)) if outputs else []
    for name in keep_float:
        hits = [n.name for n in model.graph.node if n.name == name or layer_name(n.name) == name
                or layer_name(n.name).startswith(name + '.')]
        if not hits:
            convs = sorted({layer_name(n.name) for n in model.graph.node
                            if n.op_type in ('Conv', 'ConvTranspose', 'Gemm', 'MatMul')})
            raise ValueError(f'--keep-float {name}: no layer of that name in the model; '
                             f'convolutions: {", ".join(convs)}')
        keep += [n for n in hits if n not in keep]
    return keep


def read_meta(model) -> dict:
    """The ``monodle`` metadata of an ONNX ``ModelProto`` (a clear error without it)."""
    props = {p.key: p.value for p in model.metadata_props}
    if 'monodle' not in props:
        raise KeyError('the ONNX model has no "monodle" metadata: export it with '
                       'tools/deployment/export_onnx.py')
    return parse_meta(props['monodle'])


def quantize_int8(float_path: str, out_path: str, calib_images: Sequence[str],
                  keep_float: Sequence[str] = (), fmt: str = DEFAULT_FORMAT,
                  reduce_range: bool = True, quantize_outputs: bool = False) -> dict:
    """Write the static int8 model of ``float_path`` to ``out_path``; return its record.

    Args:
        float_path: ONNX file written by :func:`~.onnx_export.export_onnx` (with metadata).
        out_path: the int8 ONNX file.
        calib_images: image files (raw KITTI frames) for the activation ranges.
        keep_float: extra layers kept float (module paths or node names), see
            :func:`float_layers`.
        fmt: one of :data:`FORMATS`.
        reduce_range: 7-bit weights (default). Needed on x86 CPUs without VNNI (AVX2,
            AVX-512 without VNNI): their u8 x s8 kernel (``vpmaddubsw``) adds pairs of
            products in saturating int16, and 255 x 127 x 2 overflows it. Measured on the
            development CPU (AVX2) with a fitted model: the first convolution alone, 8-bit
            weights, moved the heatmap by 0.75 x its std; 7-bit 0.011. False: full 8-bit
            weights, for VNNI / ARM CPUs.
        quantize_outputs: quantise the final 1x1 layer of each branch too (their outputs
            dequantised from uint8). Kept float by default; float outputs cost a noticeable
            share of the int8 time (dequantising, transposing and re-blocking the seven
            256-channel maps for the float 1x1 convolutions), so this switch is faster, at a
            small accuracy cost (speed-ups and accuracy: docs/en/deployment.md;
            ``tools/benchmark.py`` measures them).

    Returns:
        the ``monodle_int8`` record (also stored in the file): ``format``, ``weights``,
        ``activations``, ``per_channel``, ``reduce_range``, ``quantized_outputs``,
        ``calibration`` (method, count,
        image names), ``float_layers`` (module paths), ``float_nodes`` (ONNX node names),
        ``float_decoding_nodes`` (count of decoding nodes left float), ``onnxruntime``
        (version).
    """
    import onnx
    import onnxruntime
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if fmt not in FORMATS:
        raise ValueError(f'int8 format must be one of {FORMATS}, got {fmt!r}')
    if not calib_images:
        raise ValueError('int8 quantisation needs at least one calibration image')
    float_model = onnx.load(float_path)
    meta = read_meta(float_model)
    with tempfile.TemporaryDirectory() as tmp:
        pre = osp.join(tmp, 'pre.onnx')
        quant_pre_process(float_path, pre, skip_symbolic_shape=True)
        pre_model = onnx.load(pre)
        keep = float_layers(pre_model, keep_float, outputs=not quantize_outputs)
        decoding = decoding_nodes(pre_model)
        quantize_static(
            pre, out_path, FrameReader(calib_images, meta),
            quant_format=QuantFormat.QOperator if fmt == 'qoperator' else QuantFormat.QDQ,
            per_channel=True, reduce_range=reduce_range,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            nodes_to_exclude=keep + [n for n in decoding if n not in keep],
            calibrate_method=CalibrationMethod.MinMax,
            extra_options=dict(ActivationSymmetric=False, WeightSymmetric=True))
    record = dict(
        format=fmt, weights='int8 per output channel, symmetric', activations='uint8',
        per_channel=True, reduce_range=bool(reduce_range),
        quantized_outputs=bool(quantize_outputs),
        calibration=dict(method='minmax', count=len(calib_images),
                         images=[osp.basename(p) for p in calib_images]),
        float_layers=[layer_name(n) for n in keep], float_nodes=list(keep),
        float_decoding_nodes=len(decoding), onnxruntime=onnxruntime.__version__)
    model = onnx.load(out_path)
    del model.metadata_props[:]
    for prop in float_model.metadata_props:
        if prop.key != INT8_META_KEY:
            entry = model.metadata_props.add()
            entry.key, entry.value = prop.key, prop.value
    entry = model.metadata_props.add()
    entry.key, entry.value = INT8_META_KEY, json.dumps(record)
    onnx.save(model, out_path)
    return record


# ---------------------------------------------------------------------------- agreement
#: Limits on the int8 model's agreement with the float one (see :func:`check_agreement`).
#: Measured (QOperator, 7-bit weights, AVX2 CPU) with the fit test's model (YOLOv8n, 320 x 96,
#: 64-channel head, fitted to 2 kitti_mini frames, calibrated on the 13 frames), on its 2 frames,
#: for two fit recipes: depth branch from 1 m (earlier) / from 20 m (``depth_init=20``, today):
#: branch RMS error <= 0.023 x std (heatmap) for both, detections matched 13 of 13 / 15 of 15,
#: median 3D centre 0.05 / 0.016 m, depth 0.04 / 0.016 m, score change 0.005 / 0.038, Car AP40
#: unchanged.
#: The limits are about 4x the geometry and 1.6x the worst score change measured, and 2 of the
#: 19 cars' worth of AP40 (2.5 points each).
AGREEMENT_BOUNDS = dict(
    branch_rel_rmse=0.1,       # per branch: RMS(int8 - float) / std(float), every pixel
    matched_fraction=0.9,      # float detections with an int8 match (same class, 2D IoU 0.5)
    centre_median_m=0.25,      # median 3D centre distance of matched detections, metres
    depth_median_m=0.25,       # median |depth change| of matched detections, metres
    score_median=0.06,         # median |score change| of matched detections
    car_ap40_drop=5.0,         # Car AP40 (each key) float minus int8, percentage points
)


def _iou_2d(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4) x (M, 4) boxes x1 y1 x2 y2 -> (N, M) IoU."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda x: np.clip(x[:, 2:] - x[:, :2], 0, None).prod(-1)  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None] - inter, 1e-9)


def match_detections(ref: dict, other: dict, iou_thr: float = 0.5) -> list[tuple[int, int]]:
    """Greedy one-to-one matches ``(i_ref, j_other)`` of
    :func:`~.numpy_runtime.select_detections` outputs: same class, 2D IoU >= ``iou_thr``, in
    ``ref``'s score order, each taking its best free partner."""
    if len(ref['scores_3d']) == 0 or len(other['scores_3d']) == 0:
        return []
    iou = _iou_2d(ref['bboxes_2d'].astype(np.float64), other['bboxes_2d'].astype(np.float64))
    iou[ref['labels_3d'][:, None] != other['labels_3d'][None, :]] = 0
    pairs, used = [], np.zeros(iou.shape[1], bool)
    for i in np.argsort(-ref['scores_3d'], kind='stable'):
        row = np.where(used, -1.0, iou[i])
        j = int(row.argmax())
        if row[j] >= iou_thr:
            used[j] = True
            pairs.append((int(i), j))
    return pairs


def _branch_stats(ref: list[dict], got: list[dict]) -> dict:
    out = {}
    for name in OUTPUT_NAMES:
        r = np.concatenate([np.asarray(x[name], np.float64).ravel() for x in ref])
        g = np.concatenate([np.asarray(x[name], np.float64).ravel() for x in got])
        diff = g - r
        out[name] = dict(rel_rmse=float(np.sqrt(np.mean(diff ** 2)) / max(r.std(), 1e-12)),
                         max_rel=float(np.abs(diff).max() / max(np.abs(r).max(), 1e-12)))
    return out


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else float('nan')


def measure_agreement(float_path: str, int8_path: str, images: Sequence[str],
                      calib: str | None = None, label_dir: str | None = None,
                      threads: int | None = None, detections: bool = True) -> dict:
    """Run the float and the int8 model on ``images`` and compare what they output.

    Args:
        float_path, int8_path: the two ONNX files (same ``monodle`` metadata).
        images: raw image files; their calibration is found as ``ort_infer.py`` finds it
            (``calib``: a file or folder, else ``../calib/<id>.txt``).
        label_dir: KITTI ``label_2`` folder: adds Car AP40 of both models on ``images``
            (:func:`monodle_plugin.evaluation.functional.kitti_file_eval.evaluate_kitti_files`,
            the metric of ``tools/kitti_eval.py`` / ``KittiAP40Metric``, on the result lines
            ``ort_infer.py`` writes). None: no AP.
        threads: onnxruntime intra-op threads.
        detections: decode and match detections (needs each image's calibration); False:
            raw branch errors only (``detections`` then None).

    Returns:
        dict: ``branches`` {name: {rel_rmse, max_rel}} (RMS(int8 - float) / std(float) and
        max |int8 - float| / max |float| over every pixel of every frame); ``detections``:
        ``float`` / ``int8`` counts at the exported score threshold, ``matched`` (float
        detections with an int8 partner among all its top-k, same class, 2D IoU >= 0.5),
        ``matched_fraction``, ``lost`` (float detections without partner), ``gained`` (int8
        detections above the threshold without a float partner among all float top-k),
        medians and maxima over matched pairs of ``centre_m`` (3D centre distance, metres),
        ``depth_m`` (|z change|), ``score`` (|score change|); ``ap`` (with ``label_dir``):
        ``{'float': {key: AP}, 'int8': {...}}`` for the Car AP40 keys; ``frames``.
    """
    import onnx
    meta = read_meta(onnx.load(float_path, load_external_data=False))
    meta_q = read_meta(onnx.load(int8_path, load_external_data=False))
    if meta != meta_q:
        raise ValueError(f'{int8_path}: its "monodle" metadata differs from {float_path}\'s')
    sessions = dict(float=ort_session(float_path, threads), int8=ort_session(int8_path, threads))
    raw = dict(float=[], int8=[])
    dets, lines = dict(float={}, int8={}), dict(float={}, int8={})
    centre, depth, score = [], [], []
    counts = dict(float=0, int8=0, matched=0, lost=0, gained=0)
    for path in images:
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise OSError(f'{path}: image could not be read or decoded')
        feeds = frame_feeds(img, meta, read_p2(calib_path_for(path, calib))
                            if detections else None)
        stem = osp.splitext(osp.basename(path))[0]
        kept, pool = {}, {}
        for kind, sess in sessions.items():
            outs = run_graph(sess, meta, feeds, raw_maps=True)
            raw[kind].append({name: outs[name] for name in meta['outputs']})
            if not detections:
                continue
            kept[kind] = select_detections(outs, meta['score_thr'])
            pool[kind] = select_detections(outs, -np.inf)  # every top-k peak: partner pool
            dets[kind][stem] = kept[kind]
            lines[kind][stem] = format_kitti_lines(detections_to_kitti_anno(
                kept[kind]['bboxes_3d'], kept[kind]['scores_3d'], kept[kind]['labels_3d'],
                kept[kind]['bboxes_2d'], kept[kind]['alphas'], meta['class_names'], stem))
            counts[kind] += len(kept[kind]['scores_3d'])
        if not detections:
            continue
        pairs = match_detections(kept['float'], pool['int8'])
        counts['matched'] += len(pairs)
        counts['lost'] += len(kept['float']['scores_3d']) - len(pairs)
        counts['gained'] += len(kept['int8']['scores_3d']) - len(
            match_detections(kept['int8'], pool['float']))
        for i, j in pairs:
            a, b = kept['float']['bboxes_3d'][i], pool['int8']['bboxes_3d'][j]
            centre.append(float(np.linalg.norm(a[:3].astype(np.float64) - b[:3])))
            depth.append(abs(float(a[2]) - float(b[2])))
            score.append(abs(float(kept['float']['scores_3d'][i])
                             - float(pool['int8']['scores_3d'][j])))
    det = dict(counts, matched_fraction=counts['matched'] / max(counts['float'], 1),
               centre_m_median=_median(centre), centre_m_max=max(centre, default=float('nan')),
               depth_m_median=_median(depth), depth_m_max=max(depth, default=float('nan')),
               score_median=_median(score), score_max=max(score, default=float('nan')))
    report = dict(frames=len(images), branches=_branch_stats(raw['float'], raw['int8']),
                  detections=det if detections else None)
    if label_dir is not None and detections:
        report['ap'] = _car_ap40(lines, label_dir)
    return report


def _car_ap40(lines: dict, label_dir: str) -> dict:
    """Car AP40 of each model's result lines (written as ``ort_infer.py`` writes them) with
    the metric of ``tools/kitti_eval.py``."""
    from monodle_kitti.kitti_file_eval import evaluate_kitti_files
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind, per_frame in lines.items():
            folder = osp.join(tmp, kind)
            os.makedirs(folder)
            for stem, rows in per_frame.items():
                with open(osp.join(folder, f'{stem}.txt'), 'w') as f:
                    f.write(''.join(r + '\n' for r in rows))
            split = osp.join(tmp, 'split.txt')
            with open(split, 'w') as f:
                f.write(''.join(s + '\n' for s in per_frame))
            aps, _ = evaluate_kitti_files(label_dir, folder, split, classes=['Car'])
            out[kind] = {k: v for k, v in aps.items() if '_AP40_' in k}
    return out


def check_agreement(report: dict, bounds: dict | None = None) -> list[str]:
    """The violated :data:`AGREEMENT_BOUNDS` of a :func:`measure_agreement` report, one
    sentence each (empty: within bounds). Detection and AP bounds apply when the report has
    detections / AP."""
    b = dict(AGREEMENT_BOUNDS, **(bounds or {}))
    bad = []
    for name, st in report['branches'].items():
        if st['rel_rmse'] > b['branch_rel_rmse']:
            bad.append(f'branch {name}: RMS error {st["rel_rmse"]:.3f} x its std > '
                       f'{b["branch_rel_rmse"]}')
    det = report['detections'] or dict(float=0)
    if det['float']:
        if det['matched_fraction'] < b['matched_fraction']:
            bad.append(f'only {det["matched"]} of {det["float"]} float detections matched '
                       f'(< {b["matched_fraction"]:.0%})')
        for key, bound in (('centre_m_median', 'centre_median_m'),
                           ('depth_m_median', 'depth_median_m'), ('score_median', 'score_median')):
            if det['matched'] and det[key] > b[bound]:
                bad.append(f'median {key[:-7].replace("_m", "")} change {det[key]:.3f} > '
                           f'{b[bound]}')
    for key, ref in report.get('ap', {}).get('float', {}).items():
        drop = ref - report['ap']['int8'][key]
        if drop > b['car_ap40_drop']:
            bad.append(f'{key}: {report["ap"]["int8"][key]:.1f} vs float {ref:.1f} '
                       f'(drop > {b["car_ap40_drop"]} points)')
    return bad


def format_agreement(report: dict) -> str:
    """A :func:`measure_agreement` report as a few printable lines."""
    rows = ['  branch errors (RMS(int8 - float) / std(float); max |diff| / max |float|): '
            + ', '.join(f'{k} {v["rel_rmse"]:.3f} / {v["max_rel"]:.3f}'
                        for k, v in report['branches'].items())]
    det = report['detections']
    if det is not None:
        rows.append(
            f'  detections: float {det["float"]}, int8 {det["int8"]}, matched {det["matched"]} '
            f'({det["matched_fraction"]:.0%}), lost {det["lost"]}, gained {det["gained"]}; '
            f'matched pairs, median / max: 3D centre {det["centre_m_median"]:.3f} / '
            f'{det["centre_m_max"]:.3f} m, depth {det["depth_m_median"]:.3f} / '
            f'{det["depth_m_max"]:.3f} m, score {det["score_median"]:.4f} / '
            f'{det["score_max"]:.4f}')
    for key in report.get('ap', {}).get('float', {}):
        rows.append(f'  {key}: float {report["ap"]["float"][key]:.2f}, '
                    f'int8 {report["ap"]["int8"][key]:.2f}')
    return '\n'.join(rows)
