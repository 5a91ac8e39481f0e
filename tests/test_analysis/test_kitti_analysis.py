"""Per-distance AP, per-image counts and comparison, shifting, data distribution on kitti_mini."""
import json
import os
import os.path as osp

import numpy as np
import pytest

from monodle_plugin.datasets.kitti_io import (
    load_kitti_dir,
    read_calib,
    read_split_file,
    write_kitti_results,
)
from monodle_plugin.evaluation.analysis import (
    compute_ap_by_distance,
    count_objects_by_depth,
    depth_bins_from_edges,
    filter_annos_by_depth,
)
from monodle_plugin.evaluation.analysis.data_distribution import (
    collect_object_stats,
    plot_distribution,
    summarize,
)
from monodle_plugin.evaluation.analysis.per_sample import (
    compare_per_sample,
    per_sample_counts,
    precision_recall_f1,
)
from monodle_plugin.evaluation.analysis.shifting import (
    gt_as_detections,
    shift_anno,
    shift_annos,
)
from monodle_plugin.evaluation.functional import kitti_eval
from monodle_plugin.structures.geometry import project_to_image

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
KITTI = osp.join(ROOT, 'demo', 'kitti_mini', 'KITTI')
LABELS = osp.join(KITTI, 'training', 'label_2')
SPLIT = osp.join(KITTI, 'ImageSets', 'val.txt')
CLASSES = ['Car', 'Pedestrian', 'Cyclist']


@pytest.fixture(scope='module')
def data():
    ids = read_split_file(SPLIT)
    gt = load_kitti_dir(LABELS, ids, is_result=False)
    cams = [read_calib(osp.join(KITTI, 'training', 'calib', f'{i}.txt'))['cam2img'] for i in ids]
    return ids, gt, cams


def test_depth_bins_parse_and_errors():
    assert depth_bins_from_edges([0, 20, 40]) == [(0, 20), (20, 40), (40, np.inf)]
    assert depth_bins_from_edges([0, 30, np.inf]) == [(0, 30), (30, np.inf)]
    with pytest.raises(ValueError, match='increase'):
        depth_bins_from_edges([0, 40, 20])
    with pytest.raises(ValueError, match='>= 0'):
        depth_bins_from_edges([-5, 20])


def test_distance_bins_add_up_to_object_counts(data):
    ids, gt, _ = data
    bins = depth_bins_from_edges([0, 20, 40])
    counts = count_objects_by_depth(gt, bins, CLASSES)
    for c in CLASSES:
        total = sum(int((np.asarray(a['name']) == c).sum()) for a in gt)
        assert sum(counts[b][c] for b in counts) == total, c
    assert counts['0-20m']['Car'] == 12 and counts['40+m']['Car'] == 15  # kitti_mini
    # DontCare regions stay in every bin; nothing else is duplicated
    n_dc = sum(int((np.asarray(a['name']) == 'DontCare').sum()) for a in gt)
    n_all = sum(len(a['name']) for a in gt)
    per_bin = [sum(len(a['name']) for a in filter_annos_by_depth(gt, lo, hi)) for lo, hi in bins]
    assert sum(per_bin) == n_all + 2 * n_dc
    # perfect detections: the counted (moderate) cars of the bins add up to the full set's,
    # and each bin's AP40 is (n - 1) / 40 of its own n counted cars (devkit sampling)
    dets = gt_as_detections(gt, CLASSES)
    full = per_sample_counts(gt, dets, 'Car', 'moderate', '3d').sum(0)
    flat, tables = compute_ap_by_distance(gt, dets, CLASSES, bins, ('bev', '3d'))
    assert set(tables) == {'0-20m', '20-40m', '40+m'}
    n_bins = []
    for lo, hi in bins:
        g, d = filter_annos_by_depth(gt, lo, hi), filter_annos_by_depth(dets, lo, hi)
        tp, fp, fn = per_sample_counts(g, d, 'Car', 'moderate', '3d').sum(0)
        assert fp == 0 and fn == 0
        n_bins.append(tp)
        name = f'{lo:g}-{hi:g}m' if np.isfinite(hi) else f'{lo:g}+m'
        ap = flat[f'KITTI/Car_3D_AP40_moderate_strict_{name}']
        assert ap == pytest.approx(max(tp - 1, 0) / 40 * 100)
    assert sum(n_bins) == full[0] and full[2] == 0


def test_per_sample_comparison_finds_planted_difference(data, tmp_path):
    ids, gt, _ = data
    dets = gt_as_detections(gt, CLASSES)
    worse = [dict(a) for a in dets]
    victim = ids.index('000006')
    worse[victim] = dict(dets[victim], location=dets[victim]['location'] + [0, 0, 3.0])
    ca = per_sample_counts(gt, dets, 'Car', 'moderate', '3d')
    cb = per_sample_counts(gt, worse, 'Car', 'moderate', '3d')
    assert (ca[:, 1:] == 0).all()
    assert cb[victim, 0] == 0 and cb[victim, 1] == cb[victim, 2] == ca[victim, 0] > 0
    cmp = compare_per_sample(ids, ca, cb)
    assert [r['sample_id'] for r in cmp['a_wins']] == ['000006'] and not cmp['b_wins']
    f1 = precision_recall_f1(cb)['f1']
    assert f1[victim] == 0 and np.isnan(f1[ids.index('000000')])  # no car in 000000

    # the command line on written result folders
    from monodle_plugin.commands import per_sample_eval
    write_kitti_results(str(tmp_path / 'a'), ids, dets)
    write_kitti_results(str(tmp_path / 'b'), ids, worse)
    out = per_sample_eval.main(['--gt', LABELS, '--split', SPLIT, '--pred', str(tmp_path / 'a'),
                                '--compare', str(tmp_path / 'b'), '--out-json',
                                str(tmp_path / 'ps.json')])
    assert [r['sample_id'] for r in out['comparison']['a_wins']] == ['000006']
    assert json.loads((tmp_path / 'ps.json').read_text())['comparison']['b_wins'] == []


def test_shift_zero_equals_plain_ap_and_moves_centres(data, tmp_path):
    ids, gt, cams = data
    rng = np.random.default_rng(0)
    dets = gt_as_detections(gt, CLASSES)
    for d in dets:  # imperfect detections with scores
        d['location'] = d['location'] + rng.normal(0, 0.3, d['location'].shape)
        d['score'] = rng.uniform(0.1, 1, len(d['name']))
    plain = kitti_eval(gt, dets, CLASSES, ('bev', '3d'))[1]
    moved, err = shift_annos(dets, cams, 0.0)
    assert np.abs(err).max() < 1e-9
    assert kitti_eval(gt, moved, CLASSES, ('bev', '3d'))[1] == plain
    # a shift of 3 px along u moves each projected 3D centre by exactly (3, 0), z unchanged
    i = ids.index('000001')
    s = shift_anno(dets[i], cams[i], np.tile([3.0, 0.0], (len(dets[i]['name']), 1)))

    def centres(a):
        c = a['location'].copy()
        c[:, 1] -= a['dimensions'][:, 1] / 2
        return project_to_image(c, cams[i])
    np.testing.assert_allclose(centres(s) - centres(dets[i]), [[3.0, 0.0]] * len(s['name']),
                               atol=1e-9)
    np.testing.assert_allclose(s['location'][:, 2], dets[i]['location'][:, 2])
    # AP falls with the shift (ground truth as detections)
    gtd = gt_as_detections(gt, ['Car'])
    aps = [kitti_eval(gt, shift_annos(gtd, cams, s)[0], ['Car'], ('3d',))[1][
        'KITTI/Car_3D_AP40_moderate_strict'] for s in (0, 4, 16)]
    assert aps[0] > aps[1] > aps[2]


def test_data_distribution_numbers_and_plots(data, tmp_path):
    ids, gt, _ = data
    stats = collect_object_stats(LABELS, ids, CLASSES)
    summ = summarize(stats)
    assert summ['Car']['count'] == 47
    assert sum(summ['Car']['depth']['histogram']) + summ['Car']['depth']['outside_bins'] == 47
    z = np.concatenate([a['location'][a['name'] == 'Car', 2] for a in gt])
    assert summ['Car']['depth_counts']['< 20'] == int((z < 20).sum())
    assert summ['Car']['depth']['mean'] == pytest.approx(z.mean())
    paths = plot_distribution(stats, str(tmp_path), dpi=50)
    assert len(paths) == 9 and all(osp.getsize(p) > 1000 for p in paths)


def _samples_from_annos(ids, annos, classes=('Pedestrian', 'Car', 'Cyclist')):
    """Detector-like data samples (dicts of numpy arrays) from result annotations."""
    out = []
    for sid, a in zip(ids, annos):
        keep = np.isin(a['name'], classes)
        box = np.concatenate([a['location'], a['dimensions'], a['rotation_y'][:, None]], 1)
        out.append(dict(sample_id=sid,
                        pred_instances_3d=dict(bboxes_3d=box[keep], scores_3d=a['score'][keep],
                                               labels_3d=np.array([classes.index(n) for n in
                                                                   a['name'][keep]])),
                        pred_instances=dict(bboxes=a['bbox'][keep])))
    return out


def test_metric_depth_bins_and_result_files_per_epoch(data, tmp_path):
    from mmengine.logging import MessageHub, MMLogger

    from monodle_plugin.evaluation.metrics import KittiAP40Metric
    ids, gt, _ = data
    dets = gt_as_detections(gt, ['Car', 'Pedestrian', 'Cyclist'])
    metric = KittiAP40Metric(data_root=osp.join(KITTI), depth_bins=[0, 20, 40],
                             eval_types=['bev', '3d'])
    metric.process({}, _samples_from_annos(ids, dets))
    run_dir = tmp_path / '20260101_000000'
    run_dir.mkdir()
    MMLogger.get_instance('h16_metric_test', log_file=str(run_dir / 'run.log'))
    hub = MessageHub.get_instance('h16_metric_test')
    hub.update_info('loop_stage', 'val')
    hub.update_info('epoch', 4)  # 0-indexed: validation after the 5th epoch
    res = metric.evaluate(len(ids))
    expected, _ = compute_ap_by_distance(gt, dets, CLASSES, depth_bins_from_edges([0, 20, 40]),
                                         ('bev', '3d'))
    for k, v in expected.items():
        if '_AP40_' in k or '_AP11_' in k:
            assert res[k] == pytest.approx(v, abs=1e-3), k  # float32 boxes in the samples
    assert 'KITTI/Car_3D_AP40_moderate_strict_40+m' in res
    assert 'KITTI/Car_3D_AP40_moderate_strict' in res
    assert sorted(os.listdir(run_dir / 'results' / 'epoch_5')) == [f'{i}.txt' for i in ids]
    # without a run directory (no log file) nothing is written, and it says so
    metric = KittiAP40Metric(data_root=KITTI, eval_types=['3d'])
    MMLogger.get_instance('h16_metric_test2')
    assert metric.auto_results_dir(MMLogger.get_current_instance()) is None


def test_kitti_eval_cli_depth_bins_and_score_threshold(data, tmp_path, capsys):
    ids, gt, _ = data
    dets = gt_as_detections(gt, CLASSES)
    for i, d in enumerate(dets):  # half the frames' boxes score 0.3, the others 0.9
        d['score'] = np.full(len(d['name']), 0.3 if i % 2 else 0.9)
    write_kitti_results(str(tmp_path / 'pred'), ids, dets)
    from monodle_kitti.commands import kitti_eval as cli  # tools/kitti_eval.py's body
    args = ['--gt', LABELS, '--pred', str(tmp_path / 'pred'), '--split', SPLIT,
            '--eval-types', 'bev', '3d']
    res = cli.main(args + ['--depth-bins', '0', '30'])
    assert 'Objects at depth 30+m (label lines: Car ' in capsys.readouterr().out
    files = load_kitti_dir(str(tmp_path / 'pred'), ids, is_result=True)
    expected, _ = compute_ap_by_distance(gt, files, CLASSES, depth_bins_from_edges([0, 30]),
                                         ('bev', '3d'))
    for k, v in expected.items():
        assert res[k] == pytest.approx(v), k
    kept = [{k: v[:0] if i % 2 else v for k, v in d.items()} for i, d in enumerate(files)]
    _, plain = kitti_eval(gt, kept, CLASSES, ('bev', '3d'))
    res = cli.main(args + ['--score-thr', '0.5'])
    assert res['KITTI/Car_3D_AP40_moderate_strict'] == pytest.approx(
        plain['KITTI/Car_3D_AP40_moderate_strict'])
    assert res['KITTI/Car_3D_AP40_moderate_strict'] < cli.main(args)[
        'KITTI/Car_3D_AP40_moderate_strict']
