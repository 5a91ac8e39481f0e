"""Inference on any camera with a real trained model (the fit checkpoint of
tests/test_tools/test_fit_kitti_mini.py, trained once per run by the ``fit_work_dir`` fixture)
on the real kitti_mini frames: a checkpoint alone is enough, the published file evaluates to the
same metrics, MonoDLEInferencer equals tools/test.py, batches equal batch size 1, videos and
globs, the virtual-camera normalisation, one-line errors with exit status 2."""
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from tool_helpers import REPO, run_tool

from monodle_plugin.utils.checkpoint_loading import load_checkpoint_file
from monodle_plugin.utils.cli import run_cli

FIT_CONFIG = 'tests/test_tools/configs/fit_yolo8_kitti_mini.py'
MINI = REPO / 'demo' / 'kitti_mini' / 'KITTI' / 'training'
FIT_FRAMES = ('000008', '000021')  # the frames the fit checkpoint was trained on


@pytest.fixture(scope='module')
def fit_ckpt(fit_work_dir) -> Path:
    return Path((fit_work_dir / 'last_checkpoint').read_text().strip())


@pytest.fixture(scope='module')
def inferencer(fit_ckpt):
    from monodle_plugin.apis import MonoDLEInferencer
    return MonoDLEInferencer(str(fit_ckpt), show_progress=False)


def _in_process(tool: str, argv, capsys):
    from tool_helpers import load_tool
    capsys.readouterr()
    with pytest.raises(SystemExit) as ex:
        run_cli(load_tool(tool).main, [str(a) for a in argv])
    out = capsys.readouterr()
    return ex.value.code, out.out, out.err


# ---------------------------------------------------------------- item 1: a checkpoint is enough
@pytest.mark.slow
def test_published_checkpoint_alone_gives_the_same_metrics(fit_ckpt, tmp_path):
    """publish_model.py: <name>-<sha256[:8]>.pth, training state stripped, the metadata added;
    tools/test.py on it alone (its meta.cfg) = tools/test.py CONFIG original."""
    import hashlib
    proc = run_tool(['tools/model_converters/publish_model.py', fit_ckpt,
                     tmp_path / 'fit_yolo8.pth'], tmp_path)
    [published] = tmp_path.glob('fit_yolo8-*.pth')
    sha = hashlib.sha256(published.read_bytes()).hexdigest()
    assert published.name == f'fit_yolo8-{sha[:8]}.pth' and str(published) in proc.stdout
    ckpt = load_checkpoint_file(str(published))
    assert set(ckpt) == {'state_dict', 'meta'}
    assert 'optimizer' in load_checkpoint_file(str(fit_ckpt))  # what was stripped
    meta = ckpt['meta']
    assert meta['class_names'] == ['Pedestrian', 'Car', 'Cyclist']
    assert meta['input_size'] == [320, 96] and meta['decode_mode'] in ('official', 'affine')
    assert set(meta['normalization']) == {'mean', 'std', 'bgr_to_rgb'}
    assert re.fullmatch(r'[0-9a-f]{40}(-dirty)?|unknown', meta['git_commit'])
    assert meta['monodle_plugin_version'] and 'cfg' in meta and 'dataset_meta' in meta
    run_tool(['tools/test.py', FIT_CONFIG, fit_ckpt, '--work-dir', tmp_path / 'a'], tmp_path)
    run_tool(['tools/test.py', published, '--work-dir', tmp_path / 'b'], tmp_path)
    a, b = (json.loads(next((tmp_path / d).glob('*/metrics.json')).read_text())
            for d in 'ab')
    assert a == b and a['KITTI/Car_3D_AP40_moderate_loose'] > 0


def test_config_from_the_checkpoint_is_never_run(tmp_path):
    """meta.cfg is parsed as data: a dumped config with code in it is refused, not run."""
    from monodle_plugin.utils.checkpoint_loading import checkpoint_config
    from monodle_plugin.utils.cli import CheckpointError
    marker = tmp_path / 'ran'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'meta': {'cfg': f"model = dict(type='X')\n"
                                                  f"import os\nos.mkdir({str(marker)!r})\n"}},
               path)
    with pytest.raises(CheckpointError, match='line 2 is not "name = value"'):
        checkpoint_config(str(path))
    torch.save({'state_dict': {}, 'meta': {'cfg': f"x = __import__('os').mkdir({str(marker)!r})"}},
               path)
    with pytest.raises(CheckpointError, match='not plain data'):
        checkpoint_config(str(path))
    assert not marker.exists()
    torch.save({'state_dict': {}}, path)
    with pytest.raises(CheckpointError, match='holds no config .* give the config file'):
        checkpoint_config(str(path))


@pytest.mark.slow
def test_a_config_whose_model_differs_is_named(fit_ckpt, capsys):
    from monodle_plugin.utils.checkpoint_loading import resolve_config
    cfg, name = resolve_config(None, str(fit_ckpt))
    assert name == f'{fit_ckpt}:meta.cfg' and cfg.model.bbox_head.feat_channels == 64
    capsys.readouterr()
    resolve_config(FIT_CONFIG, str(fit_ckpt))
    assert capsys.readouterr().out == ''  # the same model: nothing to say
    other = 'configs/demo/monodle_yolo8_da3_kitti_mini.py'  # 32-channel head
    resolve_config(other, str(fit_ckpt))
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and other in out[0] and 'bbox_head.feat_channels' in out[0], out


# ---------------------------------------------------------------- items 3 + 5: inferencer, files
@pytest.mark.slow
def test_inferencer_equals_tools_test_and_batches_equal_batch_1(inferencer, fit_ckpt,
                                                                 tmp_path):
    """KITTI result lines of MonoDLEInferencer = those tools/test.py writes for the same frames
    (same pipeline, same model); --batch-size 4 gives the boxes of batch size 1."""
    run_tool(['tools/test.py', fit_ckpt, '--work-dir', tmp_path / 'test'], tmp_path)
    [results] = (tmp_path / 'test').glob('*/results/test')
    images = [str(MINI / 'image_2' / f'{i}.png') for i in FIT_FRAMES]
    one = inferencer(images, kitti_dir=str(tmp_path / 'kitti'), jsonl=str(tmp_path / 'a.jsonl'))
    for i in FIT_FRAMES:
        assert (tmp_path / 'kitti' / f'{i}.txt').read_text() == (results / f'{i}.txt').read_text()
    folder = str(MINI / 'image_2')
    b1 = inferencer(folder, batch_size=1)
    b4 = inferencer(folder, batch_size=4)
    assert len(b1['predictions']) == len(b4['predictions']) == 13
    for p, q in zip(b1['predictions'], b4['predictions']):
        assert p['frame'] == q['frame'] and p['labels_3d'] == q['labels_3d']
        np.testing.assert_allclose(p['bboxes_3d'], q['bboxes_3d'], atol=2e-3)
        np.testing.assert_allclose(p['scores_3d'], q['scores_3d'], atol=1e-5)
    # the plain dicts are the JSON-lines records; Det3DDataSamples come along
    records = [json.loads(line) for line in open(tmp_path / 'a.jsonl')]
    assert records == json.loads(json.dumps(one['predictions']))
    rec = records[0]
    assert rec['box_type_3d'] == 'Camera' and 'bottom-face centre' in rec['box_convention']
    assert len(rec['bboxes_3d']) == len(rec['scores_3d']) == len(rec['class_names']) \
        == len(rec['bboxes_2d']) > 0
    sample = one['data_samples'][0]
    assert type(sample).__name__ == 'Det3DDataSample'
    assert sample.pred_instances_3d.bboxes_3d.tensor.shape[0] == len(rec['bboxes_3d'])


@pytest.mark.slow
def test_demo_video_glob_and_outputs(fit_ckpt, tmp_path):
    """A video (3 kitti_mini frames, one K for all) -> MP4 + JSON lines with frame numbers;
    a glob -> PNGs + KITTI <stem>.txt; the registry builds the inferencer by name."""
    from mmdet3d.registry import INFERENCERS
    assert INFERENCERS.get('MonoDLEInferencer') is INFERENCERS.get('monodle')
    frames = [cv2.imread(str(MINI / 'image_2' / f'{i}.png'))[:370, :1224]
              for i in ('000008', '000021', '000008')]
    video = tmp_path / 'drive.mp4'
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'mp4v'), 10, (1224, 370))
    for f in frames:
        writer.write(f)
    writer.release()
    proc = run_tool(['tools/demo.py', video, fit_ckpt, '--intrinsics', MINI / 'calib' /
                     '000008.txt', '--out-dir', tmp_path / 'vis', '--jsonl',
                     tmp_path / 'v.jsonl', '--kitti-dir', tmp_path / 'kitti'], tmp_path)
    assert f'{video}: 3 frames' in proc.stdout and '3/3' in proc.stderr  # the progress bar
    cap = cv2.VideoCapture(str(tmp_path / 'vis' / 'drive.mp4'))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    records = [json.loads(line) for line in open(tmp_path / 'v.jsonl')]
    assert [r['frame'] for r in records] == [f'drive_{i:06d}' for i in range(3)]
    assert [r['frame_index'] for r in records] == [0, 1, 2]
    assert sorted(p.name for p in (tmp_path / 'kitti').iterdir()) == \
        [f'drive_{i:06d}.txt' for i in range(3)]
    proc = run_tool(['tools/demo.py', str(MINI / 'image_2' / '00002*.png'), fit_ckpt,
                     '--out-dir', tmp_path / 'glob', '--kitti-dir', tmp_path / 'gk',
                     '--batch-size', '2', '--show-gt'], tmp_path)
    assert sorted(p.name for p in (tmp_path / 'glob').iterdir()) == ['000020.png', '000021.png']
    assert sorted(p.name for p in (tmp_path / 'gk').iterdir()) == ['000020.txt', '000021.txt']
    from monodle_plugin.datasets.kitti_io import read_kitti_file
    assert len(read_kitti_file(str(tmp_path / 'gk' / '000021.txt'), need_score=True)['name'])


@pytest.mark.slow
@pytest.mark.parametrize('case', ['video', 'zeros', 'json_keys', 'missing'])
def test_demo_bad_inputs_one_line_exit_2(case, fit_ckpt, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv('MONODLE_DEBUG', raising=False)
    image = str(MINI / 'image_2' / '000008.png')
    if case == 'video':
        bad = tmp_path / 'broken.mp4'
        bad.write_bytes(b'not a video at all' * 100)
        argv, named = [bad, fit_ckpt], [bad, 'video could not be opened']
    elif case == 'zeros':
        argv, named = [image, fit_ckpt, '--intrinsics', '0', '0', '0', '0'], ['must be > 0']
    elif case == 'json_keys':
        bad = tmp_path / 'cam.json'
        bad.write_text(json.dumps({'focal_length': 700}))
        argv, named = [image, fit_ckpt, '--intrinsics', bad], [bad, 'neither "K"',
                                                               'accepted intrinsics']
    else:
        argv, named = [tmp_path / 'none.mp4', fit_ckpt], [tmp_path / 'none.mp4']
    code, out, err = _in_process('demo', [*argv, '--out-dir', tmp_path / 'o'], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and lines[-1].startswith('error: ') and 'Traceback' not in err, err
    for name in named:
        assert str(name) in lines[-1], lines[-1]


# ---------------------------------------------------------------- item 4: other cameras
def _synthetic(img: np.ndarray, p2: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """The central 70 % crop, or the image padded (black) to 140 %, with its shifted P2."""
    h, w = img.shape[:2]
    p = p2.copy()
    if kind == 'crop':
        x0, y0 = int(round(0.15 * w)), int(round(0.15 * h))
        out = img[y0:y0 + int(round(0.7 * h)), x0:x0 + int(round(0.7 * w))]
        dx, dy = -x0, -y0
    else:
        nh, nw = int(round(1.4 * h)), int(round(1.4 * w))
        dx, dy = (nw - w) // 2, (nh - h) // 2
        out = np.zeros((nh, nw, 3), img.dtype)
        out[dy:dy + h, dx:dx + w] = img
    p[0, 2] += dx  # the pixel grid shifts: u' = u + dx (the package divides by the depth)
    p[1, 2] += dy
    return np.ascontiguousarray(out), p


def centre_distances(ref: dict, other: dict, thr: float = 0.2) -> list:
    """3D centre distance of each confident reference box to the nearest same-class box."""
    out = []
    for box, label, score in zip(ref['bboxes_3d'], ref['labels_3d'], ref['scores_3d']):
        cands = [b for b, lab in zip(other['bboxes_3d'], other['labels_3d']) if lab == label]
        if score >= thr and cands:
            out.append(min(float(np.linalg.norm(np.subtract(b[:3], box[:3]))) for b in cands))
    return out


@pytest.mark.slow
def test_virtual_camera_normalisation_on_synthetic_cameras(inferencer):
    """Crop the central 70 % (focal 1/0.7 at the network input) / pad to 140 % (focal 0.7x) of
    the fitted frames: with the normalisation the boxes agree with those of the original frames
    (median 3D centre distance within NORMALISED_BOUND); without it they are metres off, or the
    model finds nothing."""
    from monodle_plugin.datasets.kitti_io import read_calib
    medians = {}
    for kind in ('crop', 'pad'):
        dist = {True: [], False: []}
        for i in FIT_FRAMES:
            img = cv2.imread(str(MINI / 'image_2' / f'{i}.png'))
            p2 = read_calib(str(MINI / 'calib' / f'{i}.txt'))['cam2img']
            ref = inferencer([img], intrinsics=p2)['predictions'][0]
            syn, p_syn = _synthetic(img, p2, kind)
            for norm in (True, False):
                pred = inferencer([syn], intrinsics=p_syn,
                                  normalize_camera=norm)['predictions'][0]
                dist[norm] += centre_distances(ref, pred)
        medians[kind] = {n: (float(np.median(d)) if d else None, len(d))
                         for n, d in dist.items()}
    print('median 3D centre distance (m), matched boxes; with / without normalisation:',
          medians)
    for kind, m in medians.items():
        (with_norm, n_with), (without, _) = m[True], m[False]
        assert n_with >= MIN_MATCHED and with_norm <= NORMALISED_BOUND[kind], (kind, m)
        assert without is None or without > 5 * with_norm, (kind, m)


#: metres: bound on the median 3D centre distance between the confident boxes (score >= 0.2) of
#: the two fitted frames and the nearest same-class box on their synthetic other camera, with
#: the normalisation; 1.5x the largest median measured, over fit models trained on two CPUs
#: (AVX2 EPYC: crop 2.09 m, pad 0.23 m over 15 boxes; AVX-512 EPYC Zen 5: crop 2.66 m over 8
#: boxes): the fit model itself differs from CPU to CPU (training is chaotic in float rounding),
#: so the bound covers both. Without it: nothing detected on the crops / 11.8 m on the pads
#: (AVX2), 16.9 m on the crops / nothing detected on the pads (Zen 5).
NORMALISED_BOUND = {'crop': 4.0, 'pad': 0.35}
#: boxes matched over the two frames, at least (15 and 8 measured on those CPUs: the central
#: 70 % crop keeps only the cars near the image centre)
MIN_MATCHED = 6


# ---------------------------------------------------------------- item 6: the ONNX path
@pytest.mark.slow
def test_export_from_the_checkpoint_alone_and_ort_infer_same_outputs(fit_ckpt, inferencer,
                                                                     tmp_path):
    """export_onnx.py CKPT OUT (no config); ort_infer.py, torch-free, on another camera (a
    padded frame, intrinsics as JSON fx/fy/cx/cy) writes the JSON lines and KITTI lines of
    MonoDLEInferencer, virtual camera included."""
    import os
    import subprocess
    import sys

    from monodle_plugin.datasets.kitti_io import read_calib
    onnx_path = tmp_path / 'fit.onnx'
    run_tool(['tools/deployment/export_onnx.py', fit_ckpt, onnx_path], tmp_path)
    img = cv2.imread(str(MINI / 'image_2' / '000008.png'))
    p2 = read_calib(str(MINI / 'calib' / '000008.txt'))['cam2img']
    syn, p_syn = _synthetic(img, p2, 'pad')
    (tmp_path / 'frames').mkdir()
    cv2.imwrite(str(tmp_path / 'frames' / 'padded.png'), syn)
    cam = tmp_path / 'cam.json'
    cam.write_text(json.dumps({'fx': p_syn[0, 0], 'fy': p_syn[1, 1], 'cx': p_syn[0, 2],
                               'cy': p_syn[1, 2]}))
    code = ("import runpy, sys\n"
            "for m in ('torch', 'mmengine', 'mmdet3d', 'mmdet', 'mmcv', 'monodle_plugin'):\n"
            "    sys.modules[m] = None\n"
            f"sys.argv = ['ort_infer.py', {str(onnx_path)!r}, {str(tmp_path / 'frames')!r}, "
            f"'--intrinsics', {str(cam)!r}, '--jsonl', {str(tmp_path / 'o.jsonl')!r}, "
            f"'--kitti-dir', {str(tmp_path / 'ort')!r}, '--draw-dir', "
            f"{str(tmp_path / 'ort_png')!r}]\n"
            f"runpy.run_path({str(REPO / 'tools/deployment/ort_infer.py')!r}, "
            "run_name='__main__')\n")
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=600, env=dict(os.environ, PYTHONPATH=''))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    [ort] = [json.loads(line) for line in open(tmp_path / 'o.jsonl')]
    [ref] = inferencer(str(tmp_path / 'frames'), intrinsics=str(cam),
                       kitti_dir=str(tmp_path / 'torch'),
                       out_dir=str(tmp_path / 'torch_png'))['predictions']
    assert ort['virtual_camera'] == ref['virtual_camera'] and \
        ref['virtual_camera']['shift_px'][0] < 0
    assert ort['labels_3d'] == ref['labels_3d'] and len(ref['labels_3d']) > 0
    np.testing.assert_allclose(ort['bboxes_3d'], ref['bboxes_3d'], atol=2e-3)
    np.testing.assert_allclose(ort['bboxes_2d'], ref['bboxes_2d'], atol=0.05)
    np.testing.assert_allclose(ort['scores_3d'], ref['scores_3d'], atol=1e-4)
    assert (tmp_path / 'ort' / 'padded.txt').is_file()
    # the drawings: tools/demo.py's canvas (real image and camera, boxes >= 0.2, BEV panel)
    got = cv2.imread(str(tmp_path / 'ort_png' / 'padded.png'))
    want = cv2.imread(str(tmp_path / 'torch_png' / 'padded.png'))
    assert got is not None and want is not None and got.shape == want.shape
    assert got.shape[1] > syn.shape[1] and (got[:, :syn.shape[1]] != syn).any()
    differ = (np.abs(got.astype(int) - want).max(axis=2) > 64).mean()
    assert differ < 1e-3, differ  # boxes equal to 2e-3 m: a few anti-aliased edge pixels


# ------------------------------------------------------- the inference guide's example
def readme_inference_example(lang: str = 'en') -> str:
    """The Python example of docs/<lang>/inference.md (the guide the README links)."""
    text = (REPO / 'docs' / lang / 'inference.md').read_text(encoding='utf-8')
    [block] = re.findall(r'```python\n(.*?)```', text, re.S)
    return block


@pytest.mark.slow
def test_readme_inference_example_runs_on_the_demo_frames(fit_work_dir, tmp_path):
    """The inference guide's five lines, with `make demo`'s work dir replaced by the fit
    test's."""
    import subprocess
    import sys

    from tool_helpers import tool_env
    code = readme_inference_example()
    assert len(code.strip().splitlines()) == 5 and code == readme_inference_example('zh_cn')
    demo_dir = 'work_dirs/demo/monodle_yolo8_da3_kitti_mini'
    assert demo_dir in code and 'outputs/inference' in code
    code = code.replace(demo_dir, str(fit_work_dir)).replace('outputs/inference',
                                                              str(tmp_path / 'vis'))
    proc = subprocess.run([sys.executable, '-c', code], cwd=REPO, env=tool_env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert 'CameraInstance3DBoxes' in proc.stdout
    assert len(list((tmp_path / 'vis').glob('*.png'))) == 13
