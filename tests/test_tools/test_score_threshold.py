"""One source for the score threshold (issue 24 item 5): the model's ``test_cfg.score_thr``
decides what is detected, and every drawing (tools/demo.py, tools/test.py --show-dir,
MonoDLEInferencer, tools/analysis_tools/visualize.py) draws at it unless the user sets
``--score-thr`` / ``pred_score_thr``. Also: tools/test.py leaves the run record to the runner
(issue 24 item 6).

The checkpoint is made, not trained: the tiny config with ``score_thr=0.1`` and a head whose
last layers output constants, so that every one of the top-k (50) peaks of every image scores
0.15 (heatmap 0.15, log-variance 0): all drawn at the model's 0.1, none at the former fixed
default 0.2.
"""
import glob
import json
import math

import numpy as np
import pytest
import torch
from tool_helpers import REPO, TINY_CONFIG, load_tool

import monodle_plugin  # noqa: F401  (registers)

IMAGE = 'demo/kitti_mini/KITTI/training/image_2/000000.png'
KITTI = REPO / 'demo' / 'kitti_mini' / 'KITTI'
MODEL_THR, SCORE, TOPK = 0.1, 0.15, 50


@pytest.fixture(scope='module')
def made_checkpoint(tmp_path_factory):
    """(checkpoint, config file): meta.cfg = the tiny config with score_thr 0.1 and no
    ``runner_type`` (as an older checkpoint's)."""
    from mmdet3d.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from monodle_plugin.structures.geometry import encode_depth
    tmp = tmp_path_factory.mktemp('thr')
    cfg = Config.fromfile(str(REPO / TINY_CONFIG))
    cfg.model.bbox_head.test_cfg.score_thr = MODEL_THR
    init_default_scope('mmdet3d')
    model = MODELS.build(cfg.model)
    head = model.bbox_head
    with torch.no_grad():  # every branch outputs its bias: the same box at every peak
        for name in ('heatmap', 'offset_2d', 'size_2d', 'depth', 'offset_3d', 'size_3d',
                     'heading'):
            getattr(head, name)[-1].weight.zero_()
            getattr(head, name)[-1].bias.zero_()  # size_3d: the class mean size
        head.heatmap[-1].bias.fill_(math.log(SCORE / (1 - SCORE)))
        head.size_2d[-1].bias.fill_(8.0)  # feature pixels
        head.depth[-1].bias[0] = encode_depth(20.0, head.bbox_coder.depth_eps)  # log-var 0
    cfg_dict = cfg.to_dict()
    cfg_dict.pop('runner_type')
    cfg = Config(cfg_dict)
    ckpt = tmp / 'thr.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {'cfg': cfg.pretty_text}}, ckpt)
    config = tmp / 'thr_config.py'
    cfg.dump(str(config))
    return str(ckpt), str(config)


def n_labelled(frame: str) -> int:
    """Objects other than DontCare in kitti_mini's label file of ``frame``."""
    lines = (KITTI / 'training' / 'label_2' / f'{frame}.txt').read_text().splitlines()
    return sum(1 for line in lines if line.split() and line.split()[0] != 'DontCare')


@pytest.fixture
def drawn(monkeypatch):
    """Number of predicted boxes handed to the drawing, per drawn image."""
    from monodle_plugin.apis import inferencer
    from monodle_plugin.engine.hooks import monodle_visualization_hook
    class Counts(list):
        gt: list  # ground-truth boxes handed to the drawing, per image (None: none)

    counts = Counts()
    counts.gt = []

    def fake_draw(img, cam2img, boxes, *args, gt_boxes=None, **kwargs):
        counts.append(len(boxes))
        counts.gt.append(None if gt_boxes is None else len(gt_boxes))
        return np.asarray(img)

    monkeypatch.setattr(inferencer, 'draw_mono3d_result', fake_draw)
    monkeypatch.setattr(monodle_visualization_hook, 'draw_mono3d_result', fake_draw)
    return counts


def test_inferencer_draws_at_the_models_threshold(made_checkpoint, drawn, tmp_path):
    from monodle_plugin.apis import MonoDLEInferencer
    ckpt, _ = made_checkpoint
    inf = MonoDLEInferencer(ckpt, show_progress=False)
    out = inf(str(REPO / IMAGE), out_dir=str(tmp_path / 'a'))
    scores = out['predictions'][0]['scores_3d']
    assert len(scores) == TOPK and min(scores) == pytest.approx(SCORE)
    assert drawn == [TOPK]  # every detection: 0.15 >= the model's 0.1
    inf(str(REPO / IMAGE), out_dir=str(tmp_path / 'b'), pred_score_thr=0.2)
    assert drawn == [TOPK, 0]  # the user's threshold wins
    inf.visualize([str(REPO / IMAGE)], out['data_samples'], img_out_dir=str(tmp_path / 'c'))
    assert drawn == [TOPK, 0, TOPK]


def test_demo_draws_at_the_models_threshold(made_checkpoint, drawn, tmp_path, capsys):
    ckpt, _ = made_checkpoint
    demo = load_tool('demo')
    demo.main([str(REPO / IMAGE), ckpt, '--out-dir', str(tmp_path), '--no-progress',
               '--device', 'cpu'])
    assert f'{TOPK} object(s) with score >= {MODEL_THR}' in capsys.readouterr().out
    demo.main([str(REPO / IMAGE), ckpt, '--out-dir', str(tmp_path), '--no-progress',
               '--device', 'cpu', '--score-thr', '0.2'])
    assert '0 object(s) with score >= 0.2' in capsys.readouterr().out
    assert drawn == [TOPK, 0]


def test_test_py_draws_at_the_models_threshold_and_keeps_the_runners_record(
        made_checkpoint, drawn, tmp_path, monkeypatch, caplog):
    ckpt, _ = made_checkpoint
    monkeypatch.chdir(REPO)  # meta.cfg's data_root is relative to the repository
    test = load_tool('test')
    test.main([ckpt, '--work-dir', str(tmp_path / 'a'), '--show-dir', 'vis', '--no-progress'])
    assert drawn == [TOPK, TOPK]  # the tiny config tests 2 frames
    # with the frames' KITTI labels in green (DontCare left out), as demo.py --show-gt
    assert drawn.gt == [n_labelled(i) for i in ('000000', '000001')] and drawn.gt[1] > 0
    # the checkpoint's config has no runner_type: test.py still builds MonoDLERunner, whose
    # run record (batch plan included) is the only one written
    [info] = glob.glob(str(tmp_path / 'a' / '*' / 'run_info.json'))
    info = json.load(open(info))
    assert info['total_batch'] == 2 and info['per_process_batch'] == 2
    test.main([ckpt, '--work-dir', str(tmp_path / 'b'), '--show-dir', 'vis', '--no-progress',
               '--score-thr', '0.2'])
    assert drawn == [TOPK, TOPK, 0, 0]


def test_visualize_draws_at_the_models_threshold(made_checkpoint, tmp_path, capsys):
    ckpt, config = made_checkpoint
    vis = load_tool('analysis_tools/visualize')
    args = ['--config', config, '--checkpoint', ckpt, '--data-dir', str(KITTI), '--ids',
            '000000', '--output-dir', str(tmp_path)]
    vis.main(args)
    assert f'{TOPK} prediction(s) with score >= {MODEL_THR}' in capsys.readouterr().out
    vis.main(args + ['--score-thr', '0.2'])
    assert '0 prediction(s) with score >= 0.2' in capsys.readouterr().out


def test_one_default_in_code():
    """The head's defaults are one constant, equal to the base config's ``test_cfg``; the
    coder has no threshold of its own."""
    import inspect

    from mmengine.config import Config

    from monodle_plugin.models.dense_heads.centernet3d_head import (
        DEFAULT_TEST_CFG,
        CenterNet3DHead,
    )
    from monodle_plugin.models.task_modules.coders.monodle_bbox_coder import MonoDLEBBoxCoder
    base = Config.fromfile(str(REPO / 'configs' / '_base_' / 'models' / 'monodle_dla34.py'))
    assert dict(base.model.bbox_head.test_cfg) == DEFAULT_TEST_CFG
    assert CenterNet3DHead(in_channels=8, feat_channels=8).test_cfg == DEFAULT_TEST_CFG
    param = inspect.signature(MonoDLEBBoxCoder.gather_predictions).parameters['score_thr']
    assert param.default is inspect.Parameter.empty


def test_drawing_threshold_follows_the_model_unless_set():
    from torch import nn

    from monodle_plugin.models.detectors import drawing_score_thr

    class Head(nn.Module):
        test_cfg = dict(score_thr=0.3)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.bbox_head = Head()

    model = Model()
    assert drawing_score_thr(model) == 0.3 and drawing_score_thr(model, 0.05) == 0.05
    with pytest.raises(ValueError, match='--score-thr'):
        drawing_score_thr(nn.Linear(1, 1))


def test_visualization_hook_refuses_a_non_bool_show_gt():
    """``show_gt='no'`` would read as True: the hook refuses anything but a bool."""
    from monodle_plugin.engine.hooks import MonoDLEVisualizationHook
    with pytest.raises(TypeError, match="MonoDLEVisualizationHook: show_gt must be True or "
                                        "False, got 'no'"):
        MonoDLEVisualizationHook(show_gt='no')
