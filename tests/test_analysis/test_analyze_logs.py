"""tools/analysis_tools/analyze_logs.py (mmdet3d's plot_curve / cal_train_time) on a
vis_data/scalars.json written by mmengine's own LocalVisBackend, as a run writes it."""
import sys
from pathlib import Path

import numpy as np
import pytest

from monodle_plugin.evaluation.analysis.runs import read_val_metrics
from monodle_plugin.evaluation.analysis.training_logs import load_scalars, train_time_stats
from monodle_plugin.utils.cli import run_cli

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / 'tests' / 'test_tools'))
from tool_helpers import load_tool  # noqa: E402

AP_KEY = 'KITTI/Car_3D_AP40_moderate_strict'
#: iterations per epoch, logged every 2 iterations, validation every 2 epochs (4 epochs)
ITERS, EPOCHS = 6, 4


def _losses(it: int) -> dict:
    return dict(loss=10.0 / it, loss_depth=5.0 / it, loss_depth_distill=1.0 / it)


def _time(epoch: int, k: int) -> float:
    return 9.0 if k == 0 else 0.1 * epoch  # the first logged value of an epoch: start-up


@pytest.fixture
def run_dir(tmp_path):
    """A run folder with vis_data/scalars.json: training lines every 2 iterations (losses,
    distillation keys, time), validation lines every 2 epochs (AP40 keys)."""
    from mmengine.visualization import LocalVisBackend
    backend = LocalVisBackend(save_dir=str(tmp_path / 'run' / 'vis_data'))  # the runner's
    it = 0
    for epoch in range(1, EPOCHS + 1):
        for k in range(ITERS // 2):
            it += 2
            backend.add_scalars(dict(lr=1e-3, **_losses(it), distill_lambda=0.5,
                                     distill_valid_frac=0.3, time=_time(epoch, k),
                                     data_time=0.01, epoch=epoch, iter=it), step=it)
        if epoch % 2 == 0:
            backend.add_scalars({AP_KEY: 10.0 * epoch, 'KITTI/Car_2D_AP40_moderate_strict':
                                 20.0 * epoch, 'data_time': 0.01, 'time': 0.2}, step=epoch)
    return tmp_path / 'run'


def test_plot_curve_losses_distill_and_ap(run_dir, tmp_path):
    tool = load_tool('analysis_tools/analyze_logs')
    scalars = str(run_dir / 'vis_data' / 'scalars.json')
    out = tmp_path / 'curves.png'
    curves = tool.main(['plot_curve', scalars, '--keys', 'loss', 'loss_depth_distill',
                        'Car_3D_AP40_moderate_strict', '--legend', 'loss', 'distill', 'ap',
                        '--out', str(out)])
    assert out.stat().st_size > 1000
    xs, ys, kind = curves['loss']
    assert kind == 'iter' and xs.tolist() == list(range(2, ITERS * EPOCHS + 1, 2))
    assert ys.tolist() == [10.0 / i for i in xs]
    xs, ys, kind = curves['distill']
    assert kind == 'iter' and ys[-1] == pytest.approx(1.0 / (ITERS * EPOCHS))
    xs, ys, kind = curves['ap']  # mmdet3d's short name of a validation key, against epochs
    assert kind == 'epoch' and xs.tolist() == [2, 4] and ys.tolist() == [20.0, 40.0]
    # two runs, a run folder for its scalars file, default legend <file>_<key>
    curves = tool.main(['plot_curve', str(run_dir), scalars, '--keys', AP_KEY, '--eval',
                        '--out', str(tmp_path / 'two.png')])
    assert len(curves) == 2 and all(c[2] == 'epoch' for c in curves.values())
    # the validation reader of format_results.py reads the same lines
    assert [r['epoch'] for r in read_val_metrics(str(run_dir))] == [2, 4]


def test_cal_train_time_leaves_out_the_first_value_per_epoch(run_dir, capsys):
    tool = load_tool('analysis_tools/analyze_logs')
    scalars = str(run_dir / 'vis_data' / 'scalars.json')
    stats = tool.main(['cal_train_time', scalars])[scalars]
    assert stats['epoch_means'] == pytest.approx({e: 0.1 * e for e in range(1, EPOCHS + 1)})
    assert stats['slowest'] == (EPOCHS, pytest.approx(0.1 * EPOCHS))
    assert stats['fastest'] == (1, pytest.approx(0.1))
    assert stats['mean'] == pytest.approx(np.mean([0.1 * e for e in range(1, EPOCHS + 1)]))
    printed = capsys.readouterr().out
    assert 'slowest epoch 4, average time is 0.4000 s/iter' in printed
    assert 'average iter time: 0.2500 s/iter' in printed
    with_outliers = train_time_stats(load_scalars(scalars), include_outliers=True)
    assert with_outliers['epoch_means'][1] == pytest.approx((9.0 + 0.1 + 0.1) / 3)


def test_unknown_key_and_missing_file_are_one_line_errors(run_dir, tmp_path, capsys,
                                                          monkeypatch):
    monkeypatch.delenv('MONODLE_DEBUG', raising=False)
    tool = load_tool('analysis_tools/analyze_logs')
    scalars = str(run_dir / 'vis_data' / 'scalars.json')
    for argv, message in (
            (['plot_curve', scalars, '--keys', 'loss_dpeth', '--out', str(tmp_path / 'x.png')],
             "no key 'loss_dpeth'; training keys: data_time, distill_lambda"),
            (['plot_curve', scalars, '--keys', 'loss', '--legend', 'a', 'b', '--out',
              str(tmp_path / 'x.png')], '2 labels for 1 files x 1 keys'),
            (['cal_train_time', str(tmp_path / 'nope.json')], 'scalars file not found')):
        with pytest.raises(SystemExit) as exit_info:
            run_cli(tool.main, argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith('error: ') and message in err and '\n' not in err, err
    bad = tmp_path / 'bad.json'
    bad.write_text('{"loss": 1, "iter": 1, "step": 1}\nnot json\n')
    with pytest.raises(ValueError, match='bad.json:2: not JSON'):
        load_scalars(str(bad))
