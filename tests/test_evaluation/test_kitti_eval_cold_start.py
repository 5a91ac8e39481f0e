"""tools/kitti_eval.py with an empty numba cache: the jitted code is compiled in two processes
(``monodle_kitti.kitti_eval_jit``), and the numbers equal those of a warm in-process run, also
when the helper process fails."""
import json
import os
import os.path as osp
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from synthetic_kitti import make_synthetic_kitti  # tests/test_evaluation (test material)

from monodle_kitti.kitti_eval import compute_kitti_ap
from monodle_kitti.kitti_eval_jit import HELPER_GROUP, MAIN_GROUP, SIGNATURES, spare_cores
from monodle_kitti.kitti_file_eval import evaluate_kitti_files
from monodle_kitti.kitti_io import load_kitti_dir, read_split_file, write_kitti_results

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
KITTI_MINI = osp.join(ROOT, 'demo', 'kitti_mini', 'KITTI')
LABELS = osp.join(KITTI_MINI, 'training', 'label_2')
SPLIT = osp.join(KITTI_MINI, 'ImageSets', 'trainval.txt')
COLD_LINE = 'numba cache was empty: compiled the evaluation code'


def _write_detections(folder: str) -> None:
    """Jittered copies of the mini set's labels with random scores, plus false positives."""
    rng = np.random.default_rng(0)
    ids = read_split_file(SPLIT)
    annos = []
    for gt in load_kitti_dir(LABELS, ids, is_result=False):
        keep = gt['name'] != 'DontCare'
        n = int(keep.sum())
        dt = {k: np.array(gt[k])[keep] for k in ('name', 'alpha', 'bbox', 'dimensions',
                                                   'location', 'rotation_y')}
        dt['bbox'] = dt['bbox'] + rng.normal(0, 4, (n, 4))
        dt['location'] = dt['location'] + rng.normal(0, 0.2, (n, 3))
        dt['rotation_y'] = dt['rotation_y'] + rng.normal(0, 0.2, n)
        dt['alpha'] = dt['alpha'] + rng.normal(0, 0.2, n)
        dt['score'] = rng.uniform(0.05, 1.0, n)
        fp = {k: v[:2].copy() for k, v in dt.items()}
        fp['location'][:, 0] += 4.0
        fp['bbox'][:, [0, 2]] += 150.0
        annos.append({k: np.concatenate([dt[k], fp[k]]) for k in dt})
    write_kitti_results(folder, ids, annos)


# an idle 2-core machine (a core spare for the helper), whatever this machine does meanwhile
IDLE = 'import monodle_kitti.kitti_eval_jit as kj; kj.spare_cores = lambda: 1.0'


def _run_cli(tmp_path, cache_dir: str, prelude: str = IDLE) -> tuple:
    """tools/kitti_eval.py's command in a fresh process with NUMBA_CACHE_DIR=cache_dir: its
    stderr and the AP dict it wrote."""
    pred = tmp_path / 'results'
    if not pred.is_dir():
        _write_detections(str(pred))
    out = tmp_path / f'ap_{len(list(tmp_path.glob("ap_*.json")))}.json'
    argv = ['--gt', LABELS, '--pred', str(pred), '--split', SPLIT, '--out-json', str(out)]
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {ROOT!r})
        {prelude}
        from monodle_kitti.cli import run_cli
        from monodle_kitti.commands.kitti_eval import main
        sys.argv = ['kitti_eval.py', *{argv!r}]
        run_cli(main)
    """)
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    proc = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                          env=env, cwd=str(tmp_path), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out) as f:
        return proc.stderr, json.load(f)


def _warm_in_process(tmp_path) -> dict:
    aps, _ = evaluate_kitti_files(LABELS, str(tmp_path / 'results'), SPLIT)
    return json.loads(json.dumps(aps))  # as the CLI writes them


def test_cold_cache_compiles_in_two_processes_same_numbers(tmp_path):
    cache = tmp_path / 'numba_cache'
    cache.mkdir()
    stderr, cold = _run_cli(tmp_path, str(cache))
    assert f'{COLD_LINE} in 2 processes' in stderr, stderr[-2000:]
    # the helper wrote its half into the same cache as the main process
    written = ' '.join(p.name for p in cache.rglob('*.nbi'))
    for name in MAIN_GROUP + HELPER_GROUP:
        assert f'.{name}-' in written, (name, written)
    expected = _warm_in_process(tmp_path)
    assert cold == expected
    assert 0 < expected['KITTI/Car_2D_AP40_moderate_strict'] < 100
    assert 0 < expected['KITTI/Car_3D_AP40_moderate_loose'] < 100
    # warm: loaded from the cache, no helper, same numbers
    stderr, warm = _run_cli(tmp_path, str(cache))
    assert COLD_LINE not in stderr, stderr[-2000:]
    assert warm == expected


def test_cold_cache_helper_failure_still_gives_the_numbers(tmp_path):
    cache = tmp_path / 'numba_cache'
    cache.mkdir()
    prelude = IDLE + "; kj._HELPER_CODE = 'raise SystemExit(3)'"
    stderr, cold = _run_cli(tmp_path, str(cache), prelude)
    assert f'{COLD_LINE} in 1 process (the helper process failed with exit code 3)' in stderr
    assert cold == _warm_in_process(tmp_path)


def test_cold_cache_busy_machine_compiles_in_process(tmp_path):
    """No core spare (others keep them busy): no helper, which would only compete."""
    cache = tmp_path / 'numba_cache'
    cache.mkdir()
    busy = 'import monodle_kitti.kitti_eval_jit as kj; kj.spare_cores = lambda: 0.0'
    stderr, cold = _run_cli(tmp_path, str(cache), busy)
    assert COLD_LINE not in stderr, stderr[-2000:]
    assert cold == _warm_in_process(tmp_path)


def test_spare_cores_sees_a_busy_core():
    """A process spinning on one of two cores leaves less than half a core spare."""
    if not osp.isfile('/proc/stat') or len(os.sched_getaffinity(0)) != 2:
        pytest.skip('measured from Linux /proc/stat; the threshold assumes 2 cores')
    spin = subprocess.Popen([sys.executable, '-c', 'while True: pass'])
    try:
        time.sleep(0.5)  # its interpreter start
        assert spare_cores(0.3) < 0.5
    finally:
        spin.kill()
        spin.wait()


def test_signatures_are_those_compute_kitti_ap_uses():
    """The ahead-of-time signatures are exactly the call's: no further compilation."""
    for func, sig in SIGNATURES.values():
        func.compile(sig)
    before = {name: set(func.overloads) for name, (func, _) in SIGNATURES.items()}
    gts, dts = make_synthetic_kitti(20, seed=1)
    aps, with_aos = compute_kitti_ap(gts, dts, ['Car', 'Pedestrian', 'Cyclist'],
                                     ['bbox', 'bev', '3d'])
    assert with_aos and aps['AP40_3D'].shape == (3, 3, 2)
    after = {name: set(func.overloads) for name, (func, _) in SIGNATURES.items()}
    assert after == before
    assert sorted(MAIN_GROUP + HELPER_GROUP) == sorted(SIGNATURES)
