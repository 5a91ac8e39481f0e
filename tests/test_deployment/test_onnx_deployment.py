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
from monodle_plugin.deployment import numpy_runtime as rt

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


@pytest.mark.parametrize('decode_mode', ['official', 'affine'])
def test_numpy_decode_equals_head(decode_mode):
    """Same raw maps -> same boxes, scores, labels, alphas and 2D boxes as the head's
    predict_by_feat (MonoDLEBBoxCoder's peaks / gather / decode)."""
    from monodle_plugin.deployment.onnx_export import export_meta
    model, _ = _build(**{'model.bbox_head.test_cfg': dict(
        _delete_=True, topk=50, score_thr=0.05, nms_kernel=3, decode_mode=decode_mode)})
    meta = export_meta(model, SMALL)
    g = torch.Generator().manual_seed(1)
    fh, fw = SMALL[1] // 4, SMALL[0] // 4
    chans = dict(heatmap=3, offset_2d=2, size_2d=2, depth=2, offset_3d=2, size_3d=3, heading=24)
    outs = {k: torch.randn(1, c, fh, fw, generator=g) for k, c in chans.items()}
    outs['heatmap'] = outs['heatmap'] * 2 - 1
    outs['size_2d'] = outs['size_2d'].abs() * 10
    outs['depth'][:, 1] *= 0.3
    img_shape = (375, 1242)
    cam2img = rt.read_p2(str(MINI / 'calib' / '000000.txt'))
    affine = rt.whole_image_affine(img_shape[1], img_shape[0], *SMALL)
    img_meta = dict(ori_shape=img_shape, cam2img=cam2img, ori_cam2img=cam2img,
                    inv_affine_mat=np.linalg.inv(affine))
    (ref, ), (ref2d, ) = model.bbox_head.predict_by_feat(outs, [img_meta])
    det = rt.decode({k: v.numpy() for k, v in outs.items()}, meta, img_shape, cam2img, affine)
    assert len(det['scores']) == len(ref.scores_3d) > 5
    np.testing.assert_array_equal(det['labels'], ref.labels_3d.numpy())
    np.testing.assert_allclose(det['scores'], ref.scores_3d.numpy(), rtol=1e-5)
    np.testing.assert_allclose(det['bboxes_3d'], ref.bboxes_3d.tensor.numpy(), rtol=1e-5,
                               atol=1e-4)
    np.testing.assert_allclose(det['alphas'], ref.alphas.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(det['bboxes'], ref2d.bboxes.numpy(), rtol=1e-5, atol=1e-3)


def test_result_lines_equal_the_metric_format():
    """format_result_lines writes what KittiAP40Metric + format_kitti_lines write."""
    from mmdet3d.structures import CameraInstance3DBoxes
    from mmengine.structures import InstanceData

    from monodle_plugin.datasets.kitti_io import format_kitti_lines
    from monodle_plugin.evaluation.metrics.kitti_ap40_metric import KittiAP40Metric
    rng = np.random.default_rng(0)
    n = 4
    boxes = rng.standard_normal((n, 7))
    boxes[:, 3:6] = np.abs(boxes[:, 3:6]) + 1  # l, h, w > 0
    det = dict(bboxes_3d=boxes.astype(np.float32),
               scores=rng.random(n).astype(np.float32), labels=np.array([0, 1, 2, 1]),
               alphas=(rng.random(n) * 8 - 4).astype(np.float32),
               bboxes=np.abs(rng.standard_normal((n, 4))).astype(np.float32) * 100)
    p3d, p2d = InstanceData(), InstanceData()
    p3d.bboxes_3d = CameraInstance3DBoxes(torch.from_numpy(det['bboxes_3d']))
    p3d.scores_3d = torch.from_numpy(det['scores'])
    p3d.labels_3d = torch.from_numpy(det['labels'])
    p3d.alphas = torch.from_numpy(det['alphas'])
    p2d.bboxes = torch.from_numpy(det['bboxes'])
    metric = KittiAP40Metric(data_root=str(ROOT / 'demo' / 'kitti_mini' / 'KITTI'))
    anno = metric._to_kitti_anno(dict(pred_instances_3d=p3d, pred_instances=p2d), '000000')
    assert rt.format_result_lines(det, ['Pedestrian', 'Car', 'Cyclist']) == \
        format_kitti_lines(anno)


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
    assert out['meta']['input_size'] == list(SMALL)

    dyn_path = tmp_path / 'dynamic.onnx'
    export_onnx.main([str(ROOT / 'configs/ablation/monodle_yolo8_kitti.py'), str(ckpt),
                      str(dyn_path), '--dynamic', '--cfg-options', *opts])
    rng = np.random.default_rng(1)
    inputs = [rng.standard_normal((2, 3, 64, 160)).astype(np.float32),
              rng.standard_normal((1, 3, 128, 416)).astype(np.float32)]
    errs = onnx_export.verify_onnx(model, str(dyn_path), inputs, tolerance=1e-4)
    assert max(errs.values()) <= 1e-4

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
