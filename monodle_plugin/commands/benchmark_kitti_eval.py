"""Benchmark the CPU KITTI evaluation against mmdet3d's ``kitti_eval`` on a val-sized set.

    python tools/analysis_tools/benchmark_kitti_eval.py [--frames 3769] [--ref-frames 200] \\
        [--work-dir DIR]

0. Times ``tools/kitti_eval.py --help`` (interpreter start and the imports of the torch-free
   ``monodle_kitti`` package: numpy, numba; no torch), ``--help-runs`` times.
1. Generates a synthetic KITTI-val-sized set (3769 frames, about 15k label lines and 40k
   detections; ``functional/synthetic_kitti.py``) and writes label and result files.
2. Times ``tools/kitti_eval.py`` on it in a fresh process with an empty numba cache (cold:
   interpreter start, file reading and numba compilation included; the command compiles in 2
   processes then, ``monodle_kitti.kitti_eval_jit``), then again (warm cache).
3. Times mmdet3d's ``kitti_eval`` on its only CPU path (numba's CUDA simulator,
   ``NUMBA_ENABLE_CUDASIM=1``), which is far too slow for the full set: on the first
   ``--ref-frames`` frames, together with ours on the same frames, checks that every AP agrees
   and reports the ratio.
"""
import argparse
import os
import os.path as osp
import re
import resource
import subprocess
import sys
import tempfile
import time

from monodle_kitti.cli import write_json_file
from monodle_kitti.kitti_eval import KITTI_EVAL_CLASSES, kitti_eval
from monodle_kitti.kitti_io import load_kitti_dir, write_kitti_results

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))  # the checkout

CLASSES = list(KITTI_EVAL_CLASSES)


def time_command(cmd: list, env: dict) -> tuple:
    """Wall and CPU seconds (user + system) of one process running ``cmd`` and the processes it
    waited for; its stdout and stderr."""
    t0 = time.perf_counter()
    usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return wall, cpu, proc.stdout, proc.stderr


def time_help(runs: int) -> dict:
    """Start-up of ``tools/kitti_eval.py --help``: wall / CPU seconds of ``runs`` processes."""
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'kitti_eval.py'), '--help']
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu, _, _ = time_command(cmd, dict(os.environ))
        walls.append(wall)
        cpus.append(cpu)
    return dict(runs=runs, wall_s=walls, cpu_s=cpus, wall_max_s=max(walls),
                wall_min_s=min(walls), cpu_max_s=max(cpus))


def run_cli(label_dir: str, pred_dir: str, split: str, out_json: str, cache_dir: str) -> dict:
    """Wall and CPU time of one ``tools/kitti_eval.py`` process, and its read / eval split.

    CPU time is the better measure on a shared machine: wall time grows with other load. With
    an empty cache the command compiles in 2 processes (``monodle_kitti.kitti_eval_jit``):
    ``two_processes`` says whether it did, the CPU time includes both.
    """
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'kitti_eval.py'), '--gt', label_dir,
           '--pred', pred_dir, '--split', split, '--out-json', out_json]
    wall, cpu, stdout, stderr = time_command(cmd, env)
    m = re.search(r'read ([\d.]+) s, evaluated ([\d.]+) s', stdout)
    return dict(wall_s=wall, cpu_s=cpu, read_s=float(m.group(1)), eval_s=float(m.group(2)),
                two_processes='compiled the evaluation code in 2 processes' in stderr,
                table=stdout)


def main(argv=None) -> dict:
    # the synthetic set and the mmdet3d reference runner are test material (tests/test_evaluation)
    sys.path.insert(0, osp.join(ROOT, 'tests', 'test_evaluation'))
    from mmdet3d_reference import run_mmdet3d_kitti_eval
    from synthetic_kitti import make_synthetic_kitti
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--frames', type=int, default=3769)
    parser.add_argument('--ref-frames', type=int, default=200,
                        help='frames for the (slow) mmdet3d CUDA-simulator run; 0 skips it')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--help-runs', type=int, default=3,
                        help='processes timed for the --help start-up (0 skips it)')
    parser.add_argument('--work-dir', help='keep the generated files here (default: temp)')
    parser.add_argument('--out-json', help='write the measurements to this JSON file')
    args = parser.parse_args(argv)

    startup = time_help(args.help_runs) if args.help_runs else None
    if startup:
        print(f'tools/kitti_eval.py --help start-up, {args.help_runs} processes: '
              f'{startup["wall_min_s"]:.2f}-{startup["wall_max_s"]:.2f} s wall, '
              f'<= {startup["cpu_max_s"]:.2f} s CPU (load average {os.getloadavg()[0]:.1f})')

    tmp = tempfile.TemporaryDirectory()
    work = args.work_dir or tmp.name
    label_dir, pred_dir = osp.join(work, 'label_2'), osp.join(work, 'results')
    os.makedirs(label_dir, exist_ok=True)
    ids = [f'{i:06d}' for i in range(args.frames)]
    gts, dts = make_synthetic_kitti(args.frames, seed=args.seed)
    for sid, g in zip(ids, gts):
        with open(osp.join(label_dir, f'{sid}.txt'), 'w') as f:
            for i in range(len(g['name'])):
                b, d, loc = g['bbox'][i], g['dimensions'][i], g['location'][i]
                f.write(f"{g['name'][i]} {g['truncated'][i]:.2f} {g['occluded'][i]} "
                        f"{g['alpha'][i]:.2f} {b[0]:.2f} {b[1]:.2f} {b[2]:.2f} {b[3]:.2f} "
                        f'{d[1]:.2f} {d[2]:.2f} {d[0]:.2f} {loc[0]:.2f} {loc[1]:.2f} '
                        f"{loc[2]:.2f} {g['rotation_y'][i]:.2f}\n")
    write_kitti_results(pred_dir, ids, dts)
    split = osp.join(work, 'split.txt')
    with open(split, 'w') as f:
        f.write('\n'.join(ids) + '\n')
    num_gt = sum(len(g['name']) for g in gts)
    num_dt = sum(len(d['name']) for d in dts)
    report = dict(frames=args.frames, label_lines=num_gt, detections=num_dt,
                  cpu_count=os.cpu_count(), loadavg_1min=os.getloadavg()[0],
                  help_startup=startup)
    print(f'{args.frames} frames, {num_gt} label lines, {num_dt} detections, '
          f'load average {report["loadavg_1min"]:.1f} on {os.cpu_count()} cores')

    with tempfile.TemporaryDirectory() as cache:
        cold = run_cli(label_dir, pred_dir, split, osp.join(work, 'ap.json'), cache)
        warm = run_cli(label_dir, pred_dir, split, osp.join(work, 'ap.json'), cache)
    for name, r in (('cold (numba compile)', cold), ('warm (numba cache)', warm)):
        how = ', compiled in 2 processes' if r['two_processes'] else ''
        print(f'ours, {name}: {r["wall_s"]:.2f} s wall, {r["cpu_s"]:.2f} s CPU for the whole '
              f'command{how} '
              f'(read {r["read_s"]:.2f} s, evaluate {r["eval_s"]:.2f} s)')
    report.update(ours_cold=dict((k, v) for k, v in cold.items() if k != 'table'),
                  ours_warm=dict((k, v) for k, v in warm.items() if k != 'table'))
    print(warm['table'])

    if args.ref_frames:
        n = min(args.ref_frames, args.frames)
        g_sub = load_kitti_dir(label_dir, ids[:n], is_result=False)
        d_sub = load_kitti_dir(pred_dir, ids[:n], is_result=True)
        kitti_eval(g_sub, d_sub, CLASSES)  # compile outside the timing
        t0 = time.perf_counter()
        _, ours = kitti_eval(g_sub, d_sub, CLASSES)
        ours_s = time.perf_counter() - t0
        # mmdet3d reports AOS only in its text; compare the 2D / BEV / 3D APs
        ref, _, ref_s, ref_warmup_s = run_mmdet3d_kitti_eval(g_sub, d_sub, CLASSES,
                                                             with_aos=False)
        diff = max(abs(ref[k] - ours[k]) for k in ref)
        print(f'mmdet3d kitti_eval (CPU = CUDA simulator), first {n} frames: {ref_s:.2f} s '
              f'(after a {ref_warmup_s:.1f} s warm-up call that compiles its jit code); '
              f'ours on the same frames, compiled: {ours_s:.3f} s (ratio {ref_s / ours_s:.0f}x); '
              f'largest AP difference {diff:.2e} over {len(ref)} values')
        per_frame = ref_s / n
        print(f'mmdet3d extrapolated linearly to {args.frames} frames: '
              f'>= {per_frame * args.frames:.0f} s (its chunked IoU grows faster than '
              f'linearly), vs ours cold {cold["wall_s"]:.1f} s / warm {warm["wall_s"]:.1f} s')
        report.update(ref_frames=n, mmdet3d_s=ref_s, mmdet3d_warmup_s=ref_warmup_s,
                      ours_same_frames_s=ours_s,
                      ratio_same_frames=ref_s / ours_s, max_abs_ap_diff=diff,
                      mmdet3d_linear_extrapolation_s=per_frame * args.frames)
    if args.out_json:
        write_json_file(args.out_json, report)
    tmp.cleanup()
    return report
