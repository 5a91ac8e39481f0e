"""ONNX deployment: the numpy runtime equals the PyTorch pipeline / head decoding, the exported
graph equals PyTorch under onnxruntime (max relative error 1e-4 per branch, fixed and dynamic
shapes), and ort_infer writes tools/test.py's result lines without importing torch.

onnx / onnxruntime are the optional extra ``EXTRAS=deploy`` (``make test`` installs it); the
tests that need them skip, saying so, when it is absent."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import monodle_plugin  # noqa: F401  (registers)
from monodle_kitti import numpy_runtime as rt

ROOT = Path(__file__).resolve().parents[2]
MINI = ROOT / 'demo' / 'kitti_mini' / 'KITTI' / 'training'
HAVE_ORT = all(importlib.util.find_spec(m) is not None for m in ('onnx', 'onnxruntime'))
needs_ort = pytest.mark.skipif(
    not HAVE_ORT, reason='onnx / onnxruntime not installed: the optional extra EXTRAS=deploy '
    '(make test installs it; or EXTRAS=deploy make env)')
SMALL = (320, 96)  # (W, H) network input of the test models


def _tiny_yolo_cfg_options(score_thr=0.0):
    """A small YOLOv8n model: 320 x 96 input, 16-channel head branches, every peak kept."""
    return {
        'model.backbone.pretrained': False,
        'model.bbox_head.feat_channels': 16,
        'model.bbox_head.test_cfg': dict(_delete_=True, topk=50, score_thr=score_thr, nms_kernel=3,
                               decode_mode='official'),
        'model.bbox_head.bbox_coder.use_mean_size': True,  # positive sizes from random weights
        'test_dataloader.dataset.pipeline.1.output_size': SMALL,
    }


def _build(config='configs/ablation/monodle_yolo8_kitti.py', checkpoint=None, **opts):
    from monodle_plugin.deployment.onnx_export import build_model_for_export
    torch.manual_seed(0)
    model, cfg = build_model_for_export(str(ROOT / config), checkpoint,
                                        dict(_tiny_yolo_cfg_options(), **opts))
    if checkpoint is None:  # MonoDLE's head init gives near-constant maps: spread them out
        # so that top-k picks and heading bins are not decided by float rounding
        for name, p in model.bbox_head.named_parameters():
            p.data.normal_(0, 1.0 if name.startswith(('heatmap', 'heading')) else 0.02)
    return model, cfg


def _pipeline_sample(cfg, model, stem):
    """What tools/test.py does for one frame: test pipeline + data preprocessor + predict."""
    from mmengine.dataset import Compose, pseudo_collate
    pipeline = Compose(cfg.test_dataloader.dataset.pipeline)
    cam2img = rt.read_p2(str(MINI / 'calib' / f'{stem}.txt'))
    data = pipeline(dict(img_path=str(MINI / 'image_2' / f'{stem}.png'), cam2img=cam2img,
                         sample_idx=int(stem), sample_id=stem))
    with torch.no_grad():
        sample = model.test_step(pseudo_collate([data]))[0]
        blob = model.data_preprocessor(pseudo_collate([data]), False)['inputs']['imgs']
    return sample, blob.numpy(), cam2img


@pytest.mark.parametrize('config', ['configs/ablation/monodle_yolo8_kitti.py',
                                    'configs/monodle/monodle_dla34_kitti.py'])
def test_numpy_preprocess_equals_pipeline(config):
    """Affine warp (PIL pixel centres), channel swap and mean / std as the PyTorch path."""
    from monodle_plugin.deployment.onnx_export import export_meta
    model, cfg = _build(config) if 'yolo' in config else _build(
        config, **{'model.bbox_head.feat_channels': 16})
    meta = export_meta(model, SMALL)
    _, blob, _ = _pipeline_sample(cfg, model, '000002')
    img = cv2.imread(str(MINI / 'image_2' / '000002.png'), cv2.IMREAD_COLOR)
    ours, mat = rt.preprocess(img, meta)
    assert ours.shape == blob.shape == (1, 3, SMALL[1], SMALL[0])
    np.testing.assert_allclose(ours, blob, rtol=0, atol=1e-5)
    from monodle_plugin.datasets.transforms.monodle_affine_aug import monodle_affine_matrix
    h, w = img.shape[:2]
    assert np.array_equal(mat, monodle_affine_matrix(np.array([w, h]) / 2, np.array([w, h]),
                                                     SMALL))


def _graph_feeds_of(sample, blob):
    """The exported graph's inputs for a pipeline sample: its network input and the metainfo
    the head decodes with (raw P2, raw size, inverse affine)."""
    m = sample.metainfo
    return dict(img=blob, cam2img=np.asarray(m['ori_cam2img'], np.float64)[None],
                ori_shape=np.asarray(m['ori_shape'][:2], np.int64)[None],
                inv_affine_mat=np.asarray(m['inv_affine_mat'], np.float64)[None])


@pytest.mark.parametrize('decode_mode', ['official', 'affine'])
def test_graph_decoding_equals_the_head(decode_mode):
    """The decoding the export traces (MonoDLEExportWrapper: the coder's select_peaks,
    gather_topk and decode_boxes on the K peaks, threshold applied afterwards) gives the
    detections of the PyTorch test path (test_step -> predict_by_feat) on a kitti_mini frame:
    same labels, order and values (to float32 rounding)."""
    from monodle_plugin.deployment.onnx_export import torch_outputs
    model, cfg = _build(**{'model.bbox_head.test_cfg': dict(
        _delete_=True, topk=50, score_thr=0.05, nms_kernel=3, decode_mode=decode_mode)})
    sample, blob, _ = _pipeline_sample(cfg, model, '000008')
    det = rt.select_detections(torch_outputs(model, _graph_feeds_of(sample, blob)), 0.05)
    ref3d, ref2d = sample.pred_instances_3d, sample.pred_instances
    assert len(det['scores_3d']) == len(ref3d.scores_3d) > 5
    np.testing.assert_array_equal(det['labels_3d'], ref3d.labels_3d.numpy())
    # the export runs the network in NCHW, the test path may pick channels_last on the CPU:
    # maps (and so everything decoded) agree to float32 rounding, not bit for bit
    np.testing.assert_allclose(det['scores_3d'], ref3d.scores_3d.numpy(), rtol=1e-6)
    np.testing.assert_allclose(det['bboxes_3d'], ref3d.bboxes_3d.tensor.numpy(), rtol=1e-6,
                               atol=1e-6)
    np.testing.assert_allclose(det['alphas'], ref3d.alphas.numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(det['bboxes_2d'], ref2d.bboxes.numpy(), rtol=1e-6, atol=1e-4)


@needs_ort
@pytest.mark.parametrize('decode_mode', ['official', 'affine'])
def test_onnx_detections_equal_pytorch(tmp_path, decode_mode):
    """onnxruntime on the exported file = PyTorch on the same graph inputs (a kitti_mini
    frame through the numpy pre-processing): raw maps within 1e-4 of their scale, the same
    detections (label, peak) above the threshold with boxes, scores and angles within
    onnx_export.DETECTION_TOLERANCE; and a changed detection is caught."""
    from monodle_plugin.deployment import onnx_export
    model, _ = _build(**{'model.bbox_head.test_cfg': dict(
        _delete_=True, topk=50, score_thr=0.05, nms_kernel=3, decode_mode=decode_mode)})
    path = str(tmp_path / 'm.onnx')
    meta = onnx_export.export_onnx(model, path, SMALL)
    assert meta['inputs'] == ['img', 'cam2img', rt.DECODE_INPUTS[decode_mode]]
    img = cv2.imread(str(MINI / 'image_2' / '000008.png'))
    feeds = rt.frame_feeds(img, meta, rt.read_p2(str(MINI / 'calib' / '000008.txt')))
    report = onnx_export.verify_onnx(model, path, [feeds])
    assert report['detections']['missing'] == 0
    ref = onnx_export.torch_outputs(model, feeds)
    got = rt.run_graph(rt.ort_session(path), meta, feeds)
    assert (ref['heatmap_scores'][0] >= 0.05).sum() > 5
    errs = onnx_export.detection_errors(ref, got, 0.05)
    print(decode_mode, errs)
    assert errs['missing'] == 0 and errs['bboxes_3d'] < 1e-3, errs
    got['bboxes_3d'][0, 0, 2] += 0.01  # the first detection 1 cm deeper: found
    assert onnx_export.detection_errors(ref, got, 0.05)['bboxes_3d'] > 0.009


@needs_ort
def test_export_verify_dynamic_and_ort_infer(tmp_path, ort_infer_without_torch):
    """export_onnx --verify (fixed and --dynamic), then ort_infer on two kitti_mini frames
    in a process where torch / mmengine / mmdet3d cannot be imported: the same result lines as
    the PyTorch test path (numbers to the last printed digit or 2e-3)."""
    from monodle_plugin.commands import export_onnx
    from monodle_plugin.deployment import onnx_export
    model, cfg = _build()
    ckpt = tmp_path / 'model.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    opts = ['model.backbone.pretrained=False', 'model.bbox_head.feat_channels=16',
            'model.bbox_head.bbox_coder.use_mean_size=True',
            'model.bbox_head.test_cfg.topk=50', 'model.bbox_head.test_cfg.score_thr=0.0',
            'model.bbox_head.test_cfg.nms_kernel=3',
            'model.bbox_head.test_cfg.decode_mode=official',
            'test_dataloader.dataset.pipeline.1.output_size=[320,96]']
    onnx_path = tmp_path / 'model.onnx'
    out = export_onnx.main([str(ROOT / 'configs/ablation/monodle_yolo8_kitti.py'), str(ckpt),
                            str(onnx_path), '--verify', '--cfg-options', *opts])
    assert max(out['errors'].values()) <= 1e-4
    assert out['detection_errors']['missing'] == 0
    assert out['meta']['input_size'] == list(SMALL)

    dyn_path = tmp_path / 'dynamic.onnx'
    export_onnx.main([str(ROOT / 'configs/ablation/monodle_yolo8_kitti.py'), str(ckpt),
                      str(dyn_path), '--dynamic', '--cfg-options', *opts])
    meta = out['meta']  # free batch and size: the raw maps and the decoding follow them
    inputs = [onnx_export.example_feeds(meta, batch=2, hw=(64, 160), seed=1),
              onnx_export.example_feeds(meta, batch=1, hw=(128, 416), seed=2)]
    report = onnx_export.verify_onnx(model, str(dyn_path), inputs, tolerance=1e-4,
                                     score_thr=0.0)
    assert max(report['branches'].values()) <= 1e-4
    assert report['detections']['missing'] == 0

    # ort_infer with torch and the OpenMMLab stack made unimportable
    out_dir, draw_dir = tmp_path / 'results', tmp_path / 'drawings'
    proc = ort_infer_without_torch(onnx_path, MINI / 'image_2', out_dir, '--draw-dir', draw_dir,
                                   '--draw-score-thr', '0', '--jsonl', tmp_path / 'dets.jsonl')
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(list(out_dir.glob('*.txt'))) == len(list((MINI / 'image_2').glob('*.png')))
    _ort_infer_drawings_are_demo_drawings(tmp_path / 'dets.jsonl', draw_dir)

    _ort_infer_refuses_bad_calibrations(onnx_path, tmp_path)

    from monodle_plugin.datasets.kitti_io import format_kitti_lines
    from monodle_plugin.evaluation.metrics.kitti_ap40_metric import KittiAP40Metric
    metric = KittiAP40Metric(data_root=str(ROOT / 'demo' / 'kitti_mini' / 'KITTI'))
    model, cfg = _build(checkpoint=str(ckpt))
    for stem in ('000000', '000008'):
        sample, _, _ = _pipeline_sample(cfg, model, stem)
        ref = format_kitti_lines(metric._to_kitti_anno(sample, stem))
        got = (out_dir / f'{stem}.txt').read_text().splitlines()
        assert len(got) == len(ref) > 0

        def key(line):  # saturated (clamped) heatmap peaks tie: their order is arbitrary
            f = line.split()
            return f[0], float(f[4]), float(f[5])
        for a, b in zip(sorted(got, key=key), sorted(ref, key=key)):
            fa, fb = a.split(), b.split()
            assert fa[:3] == fb[:3]
            np.testing.assert_allclose(np.float64(fa[3:]), np.float64(fb[3:]), rtol=1e-3,
                                       atol=2e-3)


def _ort_infer_drawings_are_demo_drawings(jsonl, draw_dir):
    """--draw-dir: one PNG per image, tools/demo.py's canvas (draw_mono3d_result: projected
    boxes + BEV, the frame name as title) of the frame's detections (the JSON-lines record).
    The record rounds boxes to 0.1 mm: the BEV panel is unchanged by that, but this random
    model's boxes lie 1 m from the camera, where the edges cut at the near plane move by a
    pixel (measured: <= 0.8 % of the image pixels); tests/test_tools/test_inference.py
    compares ort_infer's drawings with MonoDLEInferencer's on a fitted model."""
    import json

    import cv2

    from monodle_kitti.kitti_io import read_calib
    from monodle_kitti.mono3d_drawing import draw_mono3d_result
    records = {r['frame']: r for r in map(json.loads, open(jsonl))}
    pngs = sorted(draw_dir.glob('*.png'))
    assert [p.stem for p in pngs] == sorted(p.stem for p in (MINI / 'image_2').glob('*.png'))
    assert sorted(records) == [p.stem for p in pngs]
    for png in pngs:
        img = cv2.imread(str(MINI / 'image_2' / png.name))
        got = cv2.imread(str(png))
        rec = records[png.stem]
        ref = draw_mono3d_result(img, read_calib(str(MINI / 'calib' / f'{png.stem}.txt'))
                                 ['cam2img'], np.array(rec['bboxes_3d']).reshape(-1, 7),
                                 np.array(rec['labels_3d']), np.array(rec['scores_3d']),
                                 title=png.stem)
        assert len(rec['bboxes_3d']) and (got[:, :img.shape[1]] != img).any()
        assert got.shape == ref.shape and got.shape[1] > img.shape[1]
        diff = np.abs(got.astype(int) - ref).max(axis=2) > 64
        width = img.shape[1]
        assert not diff[:, width:].any(), png.name  # the BEV panel
        assert diff[:, :width].mean() < 0.015, (png.name, diff[:, :width].mean())


def _ort_infer_refuses_bad_calibrations(onnx_path, tmp_path):
    """An all-zero or NaN P2 wrote `nan` coordinates with exit 0; an image resized without
    its calibration ran silently (issue 25): now exit 2, one line naming the file."""
    import cv2
    calib = (MINI / 'calib' / '000000.txt').read_text()
    p2 = next(line for line in calib.splitlines() if line.startswith('P2:'))
    cases = {'zero': calib.replace(p2, 'P2: ' + ' '.join(['0'] * 12)),
             'nan': calib.replace(p2, 'P2: ' + ' '.join(['nan'] * 12))}
    small = tmp_path / 'small'
    small.mkdir()
    img = cv2.imread(str(MINI / 'image_2' / '000000.png'))
    cv2.imwrite(str(small / '000000.png'), cv2.resize(img, None, fx=0.5, fy=0.5))
    for name, text in [*cases.items(), ('resized', calib)]:
        path = tmp_path / f'calib_{name}.txt'
        path.write_text(text)
        image = small / '000000.png' if name == 'resized' else MINI / 'image_2' / '000000.png'
        proc = subprocess.run([sys.executable, str(ROOT / 'tools/deployment/ort_infer.py'),
                               str(onnx_path), str(image), '--calib', str(path), '--out-dir',
                               str(tmp_path / f'out_{name}')],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2, (name, proc.stderr[-2000:])
        last = proc.stderr.strip().splitlines()[-1]
        words = {'zero': 'focal lengths', 'nan': 'NaN or inf', 'resized': 'principal point'}
        assert last.startswith('error: ') and words[name] in last and str(path) in last, last
        assert not list((tmp_path / f'out_{name}').glob('*.txt'))
    # a drawing folder that cannot be created (a file in its way): exit 2, one line naming it
    blocker = tmp_path / 'a_file'
    blocker.write_text('')
    proc = subprocess.run([sys.executable, str(ROOT / 'tools/deployment/ort_infer.py'),
                           str(onnx_path), str(MINI / 'image_2' / '000000.png'), '--draw-dir',
                           str(blocker / 'drawings')], capture_output=True, text=True, timeout=300)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and last.startswith('error: '), proc.stderr[-2000:]
    assert str(blocker / 'drawings') in last and 'drawing folder' in last, last


@needs_ort
def test_ort_infer_without_metadata_is_a_clear_error(tmp_path):
    import onnx
    from onnx import TensorProto, helper
    graph = helper.make_graph([helper.make_node('Identity', ['img'], ['heatmap'])], 'g',
                              [helper.make_tensor_value_info('img', TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info('heatmap', TensorProto.FLOAT, [1])])
    path = tmp_path / 'plain.onnx'
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)],
                                ir_version=8), str(path))
    proc = subprocess.run([sys.executable, str(ROOT / 'tools/deployment/ort_infer.py'),
                           str(path), str(MINI / 'image_2' / '000000.png'), '--out-dir',
                           str(tmp_path / 'out')], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr  # a user error: one line `error: ...`
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith('error: ')
    assert 'no "monodle" metadata' in proc.stderr and 'export_onnx.py' in proc.stderr


@needs_ort
def test_ort_infer_refuses_a_model_exported_before_the_decoding_moved_into_the_graph(tmp_path):
    """An ONNX file of the raw-maps era (its metadata has no graph inputs / detections): one
    line naming the file, the missing keys and the fix (re-export), exit status 2."""
    import json

    import onnx
    from onnx import TensorProto, helper
    graph = helper.make_graph([helper.make_node('Identity', ['img'], ['heatmap'])], 'g',
                              [helper.make_tensor_value_info('img', TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info('heatmap', TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)], ir_version=8)
    old = {k: None for k in rt.META_KEYS if k not in ('inputs', 'detections')}
    helper.set_model_props(model, {'monodle': json.dumps(old)})
    path = tmp_path / 'old.onnx'
    onnx.save(model, str(path))
    proc = subprocess.run([sys.executable, str(ROOT / 'tools/deployment/ort_infer.py'),
                           str(path), str(MINI / 'image_2' / '000000.png'), '--out-dir',
                           str(tmp_path / 'out')], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    line = proc.stderr.strip()
    assert line.startswith('error: ') and str(path) in line, line
    assert "'inputs'" in line and "'detections'" in line and 're-export' in line, line
    assert not (tmp_path / 'out').exists() or not list((tmp_path / 'out').glob('*.txt'))


def _number_diff(got: list, ref: list) -> float:
    """Largest |difference| of the numbers of two lists of KITTI result lines, line by line
    (same order), after checking each: class name and the two fixed fields equal, geometry
    (4 decimals) within 1e-4 plus the float32 spacing of the number (both paths write float32
    values: 1.2e-4 from 1024 px on, where one float32 step can turn into 2e-4 printed), score
    (6 decimals) within 1e-5."""
    assert len(got) == len(ref) > 0
    worst = 0.0
    for a, b in zip(got, ref):
        fa, fb = a.split(), b.split()
        assert fa[:3] == fb[:3], (a, b)
        va, vb = np.float64(fa[3:]), np.float64(fb[3:])
        diff = np.abs(va - vb)
        bound = 1e-4 + np.spacing(np.abs(vb).astype(np.float32)) + 1e-9
        assert (diff[:-1] <= bound[:-1]).all() and diff[-1] <= 1e-5, (a, b)
        worst = max(worst, float(diff.max()))
    return worst


@needs_ort
@pytest.mark.slow
def test_ort_infer_writes_the_result_lines_of_tools_test(fit_work_dir, tmp_path,
                                                          ort_infer_without_torch):
    """One decoder: the fitted test-size model (tests/conftest.py fit_work_dir) exported with
    its decoding; ort_infer.py (torch-free: onnxruntime decodes) writes, for the frames
    tools/test.py tests, the lines of tools/test.py's result files: same lines in the same
    order, every number within 1e-4, the 4th decimal the lines print (see _number_diff;
    measured 2026-12-07: 1e-4 at most, one last-digit rounding; onnxruntime vs PyTorch on the
    same inputs: boxes 7e-5 m, 1.2e-4 px (one float32 step), scores 1.2e-6)."""
    import os

    from monodle_plugin.commands.export_onnx import main as export_onnx_main
    ckpt = (fit_work_dir / 'last_checkpoint').read_text().strip()
    fit_config = str(ROOT / 'tests/test_tools/configs/fit_yolo8_kitti_mini.py')
    onnx_path = tmp_path / 'fit.onnx'
    out = export_onnx_main([fit_config, ckpt, str(onnx_path), '--verify'])
    assert isinstance(out, dict) and out['detection_errors']['missing'] == 0
    proc = subprocess.run([sys.executable, 'tools/test.py', fit_config, ckpt, '--work-dir',
                           str(tmp_path / 'test')], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    [ref_dir] = (tmp_path / 'test').glob('*/results/test')
    out_dir = tmp_path / 'ort'
    proc = ort_infer_without_torch(onnx_path, MINI / 'image_2', out_dir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ref_files = sorted(ref_dir.glob('*.txt'))
    assert [p.stem for p in ref_files] == ['000008', '000021']
    worst = max(_number_diff((out_dir / p.name).read_text().splitlines(),
                             p.read_text().splitlines()) for p in ref_files)
    print(f'ort_infer vs tools/test.py: largest difference of a printed number {worst:.1e}')
