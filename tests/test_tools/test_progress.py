"""Progress bars of long single-process tools go to stderr; the report on stdout stays clean
(tools/misc/check_depth_labels.py -> monodle_plugin.datasets.depth_label_check)."""
import os.path as osp

from tool_helpers import REPO

from monodle_plugin.datasets import depth_label_check as chk

MINI = osp.join(str(REPO), 'demo', 'kitti_mini', 'KITTI')


def test_check_depth_labels_shows_progress_on_stderr(capsys):
    with open(osp.join(MINI, 'ImageSets', 'val.txt')) as f:
        n = len([line for line in f if line.strip()])
    problems, rows = chk.check(MINI, 'lidar_depth', 'val')
    captured = capsys.readouterr()
    assert problems == 0 and len(rows) == n
    assert f'{n}/{n}' in captured.err  # mmengine ProgressBar: "[>>>] done/total, ..."
    assert f'{n}/{n}' not in captured.out and 'ETA' not in captured.out


def test_progress_bar_hook_counts_train_iterations_and_val_images():
    """ProgressBarHook: training counts iterations from the resumed one; a validation inside
    training gets its own bar over the images (batch sizes added); unknown phases are errors."""
    import io
    from types import SimpleNamespace

    import pytest

    from monodle_plugin.engine.hooks import ProgressBarHook

    out = io.StringIO()
    hook = ProgressBarHook(phases=['train', 'val'], file=out)
    val_loop = SimpleNamespace(dataloader=SimpleNamespace(dataset=list(range(5))))
    runner = SimpleNamespace(max_iters=10, iter=4, val_loop=val_loop)
    hook.before_train(runner)
    for i in range(3):
        hook.after_train_iter(runner, i)
    hook.before_val_epoch(runner)
    for batch in (2, 2, 1):
        hook.after_val_iter(runner, 0, dict(data_samples=[None] * batch))
    hook.after_val_epoch(runner)
    for i in range(3):
        hook.after_train_iter(runner, i)
    hook.after_train(runner)
    text = out.getvalue()
    assert '5/5' in text  # the validation images
    assert '6/6' in text and '7/6' not in text  # 10 - 4 resumed iterations, bar resumed
    with pytest.raises(ValueError, match='unknown phases'):
        ProgressBarHook(phases=['training'])
