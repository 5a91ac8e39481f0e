"""Side-by-side cost of MonoDLE variants: parameters, MACs, CPU latency, peak memory.

One run measures every model under the same conditions (the machines are noisy: compare
ratios from one run, never numbers from different runs). Latency rounds are interleaved
across the models so that background load spreads over all of them.

Measured per model, batch 1, 3 x H x W input (default 384 x 1280), inference mode:
- parameters (all of backbone + neck + head);
- GMACs: ``mmengine.analysis.FlopAnalyzer`` (fvcore convention: one multiply-add = one
  "flop", so the number is MACs), traced on one forward;
- latency: median (``--stat min``: minimum) of ``--repeats`` forwards after ``--warmup`` ones,
  ``torch.set_num_threads`` threads, wall clock (``--clock cpu``: process CPU time, robust to
  other jobs with ``--threads 1``), with NCHW input and weights (the code as shipped; the
  YOLO configs' backbone switches its CPU eval input to channels_last itself) and with
  model and input in ``channels_last``; the speed-up compares the best of the two formats;
- peak RSS: in a fresh subprocess per model, the process' peak resident memory during one
  forward (``VmHWM`` reset just before it) and its increase over the resident memory before.

What is timed is the network (backbone + neck + head raw maps), as the official code's
``CenterNet3D.forward``: no data preprocessing, no decoding, no NMS. With onnx + onnxruntime
installed (``EXTRAS=deploy``) every config is also exported to ONNX (the graph of
``tools/deployment/export_onnx.py``, which also holds the box coder's decoding: that column
includes the top-k and per-peak geometry) and timed under onnxruntime's CPU provider with the
same thread count (``--no-onnxruntime`` skips it).

``--official-root`` adds the official MonoDLE ``CenterNet3D(dla34)`` from a folder the user
fetched (e.g. ``git clone https://github.com/xinzhuma/monodle /tmp/ref/monodle``; never commit
it), built with ``pretrained=False``. ``--train`` measures training images/s instead: our models
through ``train_step`` (losses, backward, optimizer step) on a real batch of the config's
training pipeline, the official model forward + backward + SGD step of a surrogate loss (the
sum of its output means; its loss functions cost little next to the network).

Usage::

    python tools/benchmark.py --official-root /tmp/ref/monodle
    python tools/benchmark.py --official-root /tmp/ref/monodle --threads 1 --clock cpu
    python tools/benchmark.py configs/ablation/monodle_yolo8_kitti.py --profile
    python tools/benchmark.py --train --batch-size 2 --data-root demo/kitti_mini/KITTI/
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch import nn

from ..utils.model_complexity import (
    HeadForward,
    count_macs,
    count_parameters,
)

REPO = Path(__file__).resolve().parents[2]  # the checkout (configs/, demo/)

DEFAULT_CONFIGS = [
    'configs/monodle/monodle_dla34_kitti.py',
    'configs/ablation/monodle_yolo8_kitti.py',
    'configs/ablation/monodle_yolo11_kitti.py',
    'configs/ablation/monodle_yolo26_kitti.py',
]
OFFICIAL = 'official'


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('configs', nargs='*', default=DEFAULT_CONFIGS,
                        help='model configs (default: DLA34 and the three YOLO ablations)')
    parser.add_argument('--official-root', default=None,
                        help='folder of the official MonoDLE code (has lib/models/centernet3d.py)')
    parser.add_argument('--height', type=int, default=384)
    parser.add_argument('--width', type=int, default=1280)
    parser.add_argument('--threads', type=int, default=2, help='torch.set_num_threads')
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--no-channels-last', action='store_true',
                        help='skip the channels_last latency column')
    parser.add_argument('--fuse-conv-bn', action='store_true',
                        help='fold BatchNorm into the preceding convolution (mmcv fuse_conv_bn) '
                        'in every model, the official one included')
    parser.add_argument('--no-memory', action='store_true', help='skip the peak RSS column')
    parser.add_argument('--no-onnxruntime', action='store_true',
                        help='skip the onnxruntime column (added when onnxruntime is installed)')
    parser.add_argument('--no-int8', action='store_true',
                        help='skip the int8 onnxruntime column (static int8 model of '
                        'tools/deployment/export_onnx.py --int8)')
    parser.add_argument('--calib-images', default='demo/kitti_mini/KITTI/training/image_2',
                        help='frames calibrating the int8 models (speed does not depend on '
                        'them)')
    parser.add_argument('--calib-count', type=int, default=2,
                        help='calibration frames of the int8 models')
    parser.add_argument('--int8-format', choices=['qoperator', 'qdq'], default=None,
                        help="int8 format (default: export_onnx's)")
    parser.add_argument('--int8-outputs', action='store_true',
                        help='int8 models with the final 1x1 layers quantised too '
                        '(export_onnx.py --int8-outputs)')
    parser.add_argument('--no-flops', action='store_true', help='skip the MACs column')
    parser.add_argument('--clock', choices=['wall', 'cpu'], default='wall',
                        help="'cpu': process CPU time instead of wall-clock; with --threads 1 it "
                        'is far less sensitive to other jobs on a shared machine')
    parser.add_argument('--stat', choices=['median', 'min'], default='median',
                        help="'min' approximates an idle machine when other jobs share it")
    parser.add_argument('--profile', action='store_true',
                        help='also print the latency of each module (forward hooks) and the '
                        'slowest operators (torch.profiler)')
    parser.add_argument('--profile-format', choices=['nchw', 'channels_last'],
                        default='channels_last', help='memory format of the --profile runs')
    parser.add_argument('--train', action='store_true', help='measure training images/s')
    parser.add_argument('--batch-size', type=int, default=2, help='batch size for --train')
    parser.add_argument('--data-root', default='demo/kitti_mini/KITTI/',
                        help='dataset root for --train batches')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--amp', action='store_true', help='autocast (with --device cuda)')
    parser.add_argument('--memory-child', default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------------------
# model construction

class OfficialForward(nn.Module):
    """The official ``CenterNet3D`` returning a tuple (its dict in head order)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, img: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.net(img).values())


def load_config(path: str, data_root: str | None = None):
    """mmengine Config with weights that cannot be fetched offline switched off."""
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    from monodle_plugin.utils.distill_switches import apply_distill_switches
    apply_distill_switches(cfg)  # the model a run builds (e.g. a +DA3+U uncertainty branch)
    backbone = cfg.model.get('backbone', {})
    if backbone.get('type') == 'UltralyticsBackbone' or 'pretrained' in backbone:
        backbone['pretrained'] = False  # speed does not depend on the weights
    if 'init_cfg' in backbone:
        backbone['init_cfg'] = None
    if data_root is not None:
        for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            if key in cfg and cfg[key] is not None:
                cfg[key].dataset.data_root = data_root
    return cfg


def build_from_config(path: str, data_root: str | None = None) -> nn.Module:
    """Build the detector of a config (weights random: ``init_weights`` is not called)."""
    from mmdet3d.registry import MODELS
    from mmengine.registry import init_default_scope
    cfg = load_config(path, data_root)
    if cfg.get('custom_imports'):  # e.g. mmpretrain.models for registry backbones
        from mmengine.utils import import_modules_from_strings
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'mmdet3d'))
    return MODELS.build(cfg.model)


def build_official(root: str) -> nn.Module:
    """The official MonoDLE ``CenterNet3D(backbone='dla34')``, without pretrained weights."""
    root = str(Path(root).resolve())
    if not (Path(root) / 'lib' / 'models' / 'centernet3d.py').is_file():
        raise FileNotFoundError(f'--official-root {root}: lib/models/centernet3d.py not found '
                                '(clone https://github.com/xinzhuma/monodle there)')
    sys.path.insert(0, root)
    from lib.backbones import dla  # the official package, imported from the fetched folder
    from lib.models import centernet3d

    official_dla34 = dla.dla34

    def dla34_offline(pretrained: bool = False, **kwargs) -> nn.Module:
        return official_dla34(pretrained=False, **kwargs)  # its default downloads ImageNet weights

    dla.dla34 = dla34_offline
    return centernet3d.CenterNet3D(backbone='dla34', neck='DLAUp', num_class=3, downsample=4)


def build(spec: str, args: argparse.Namespace) -> nn.Module:
    if spec == OFFICIAL:
        model = build_official(args.official_root)
    else:
        model = build_from_config(spec, args.data_root if args.train else None)
    if args.fuse_conv_bn and not args.train:
        from mmcv.cnn import fuse_conv_bn
        model = fuse_conv_bn(model.eval())
    return model


def forward_module(spec: str, model: nn.Module) -> nn.Module:
    return OfficialForward(model) if spec == OFFICIAL else HeadForward(model)


def short_name(spec: str) -> str:
    return 'official MonoDLE (DLA34)' if spec == OFFICIAL else Path(spec).stem


# ----------------------------------------------------------------------------------------
# measurements

def interleaved_latency(nets: dict[str, nn.Module], x: torch.Tensor, warmup: int,
                        repeats: int, clock: str = 'wall', stat: str = 'median'
                        ) -> dict[str, float]:
    """Median (or min) forward time (ms) per model; round r times every model once."""
    timer = time.perf_counter if clock == 'wall' else time.process_time
    times = defaultdict(list)
    with torch.inference_mode():
        for _ in range(warmup):
            for net in nets.values():
                net(x)
        for _ in range(repeats):
            for name, net in nets.items():
                start = timer()
                net(x)
                times[name].append(timer() - start)
    reduce = statistics.median if stat == 'median' else min
    return {name: 1000 * reduce(t) for name, t in times.items()}


def module_profile(net: nn.Module, x: torch.Tensor, depth: int, repeats: int,
                   clock: str = 'wall') -> list[tuple[str, float]]:
    """Median time (ms) of every module down to ``depth`` levels (nested times overlap)."""
    timer = time.perf_counter if clock == 'wall' else time.process_time
    starts, times, handles = {}, defaultdict(list), []
    for name, module in net.named_modules():
        if not name or name.count('.') >= depth:
            continue
        handles.append(module.register_forward_pre_hook(
            lambda m, a, name=name: starts.__setitem__(name, timer())))
        handles.append(module.register_forward_hook(
            lambda m, a, o, name=name: times[name].append(timer() - starts[name])))
    with torch.inference_mode():
        net(x)
        times.clear()
        for _ in range(repeats):
            net(x)
    for h in handles:
        h.remove()
    # modules called several times per forward: sum per call group
    out = []
    for name, t in times.items():
        calls = len(t) // repeats
        per_run = [sum(t[i * calls:(i + 1) * calls]) for i in range(repeats)]
        out.append((name, 1000 * statistics.median(per_run)))
    return out


def operator_profile(net: nn.Module, x: torch.Tensor, rows: int = 15) -> str:
    """Table of the operators with the largest self CPU time over one forward."""
    from torch.profiler import ProfilerActivity, profile
    with torch.inference_mode():
        net(x)
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            net(x)
    return prof.key_averages(group_by_input_shape=True).table(
        sort_by='self_cpu_time_total', row_limit=rows, max_name_column_width=40,
        max_shapes_column_width=60)


def _status_mib(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS, VmHWM) in MiB."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f'{field} not in /proc/self/status')


def memory_child(spec: str, args: argparse.Namespace) -> None:
    """Print JSON {peak_mib, delta_mib}: peak RSS during one forward, in this process.

    Runs in a fresh process (``ru_maxrss`` survives fork + exec, ``VmHWM`` does not); the
    high-water mark is reset just before the forward (``/proc/self/clear_refs``, Linux >= 4.0).
    """
    torch.set_num_threads(args.threads)
    net = forward_module(spec, build(spec, args)).eval()
    x = torch.randn(1, 3, args.height, args.width)
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # reset VmHWM to the current RSS
    before = _status_mib('VmRSS')
    with torch.inference_mode():
        net(x)
    peak = _status_mib('VmHWM')
    print(json.dumps(dict(peak_mib=peak, delta_mib=peak - before)))


def peak_memory(spec: str, args: argparse.Namespace) -> dict | None:
    cmd = [sys.executable, str(REPO / 'tools' / 'benchmark.py'), '--memory-child', spec,
           '--height', str(args.height), '--width', str(args.width), '--threads',
           str(args.threads)]
    if args.fuse_conv_bn:
        cmd.append('--fuse-conv-bn')
    if args.official_root:
        cmd += ['--official-root', args.official_root]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        print(f'[memory] {spec}: failed\n{proc.stderr[-2000:]}', file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------------
# training throughput

def train_images_per_s(spec: str, model: nn.Module, args: argparse.Namespace) -> float:
    device = torch.device(args.device)
    model.to(device).train()
    n = args.warmup + args.repeats
    if spec == OFFICIAL:
        optim = torch.optim.SGD(model.parameters(), lr=1e-4)
        x = torch.randn(args.batch_size, 3, args.height, args.width, device=device)

        def step():
            with torch.autocast(device.type, enabled=args.amp):
                loss = sum(o.float().mean() for o in model(x).values())
            optim.zero_grad()
            loss.backward()
            optim.step()
    else:
        from mmengine.optim import build_optim_wrapper
        from mmengine.runner import Runner
        cfg = load_config(spec, args.data_root)
        from ..datasets.transforms.encode_monodle_targets import (
            fill_target_coders,
        )
        fill_target_coders(cfg)  # as MonoDLERunner: the head's coder encodes the targets
        for step in cfg.train_dataloader.dataset.pipeline:
            if step['type'] == 'MonoDLEAffineAug':
                step['output_size'] = (args.width, args.height)
        cfg.train_dataloader.batch_size = args.batch_size
        cfg.train_dataloader.num_workers = 0
        cfg.train_dataloader.persistent_workers = False
        cfg.train_dataloader.pin_memory = False  # one batch, read once before timing
        loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
        data = next(iter(loader))
        optim_cfg = dict(cfg.optim_wrapper)
        if args.amp:
            optim_cfg.update(type='AmpOptimWrapper')
        optim_wrapper = build_optim_wrapper(model, optim_cfg)

        def step():
            model.train_step(data, optim_wrapper)

    times = []
    for i in range(n):
        if device.type == 'cuda':
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if device.type == 'cuda':
            torch.cuda.synchronize()
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    return args.batch_size / statistics.median(times)


# ----------------------------------------------------------------------------------------

def _have_onnxruntime() -> bool:
    import importlib.util
    return all(importlib.util.find_spec(m) is not None for m in ('onnx', 'onnxruntime'))


def ort_latency(models: dict[str, nn.Module], args: argparse.Namespace
                ) -> tuple[dict[str, float], dict[str, float], dict[str, str]]:
    """Latency (ms) of each model exported to ONNX and run by onnxruntime (CPU provider,
    ``args.threads`` intra-op threads), float and (unless ``--no-int8``) static int8, all
    sessions interleaved in each round like :func:`interleaved_latency`.

    Returns ``(float ms, int8 ms, int8 operator summary)``; the summary lists the operator
    types of the int8 graph after onnxruntime's optimisations (what its CPU provider runs, e.g.
    ``com.microsoft.QLinearConv`` = the NHWC int8 convolution) with their share of the time in
    one profiled run."""
    import copy
    import tempfile

    from ..deployment import int8
    from ..deployment.onnx_export import example_feeds, export_onnx, ort_session
    timer = time.perf_counter if args.clock == 'wall' else time.process_time
    sessions, kernels, feeds = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        calib = [] if args.no_int8 else int8.pick_calibration_images(args.calib_images,
                                                                      args.calib_count)
        for i, (spec, model) in enumerate(models.items()):
            path = os.path.join(tmp, f'{i}.onnx')
            try:
                meta = export_onnx(copy.deepcopy(model), path, (args.width, args.height))
            except Exception as e:  # noqa: BLE001 - report the model, time the others
                print(f'[onnxruntime] {spec}: export failed ({type(e).__name__}: {e})',
                      file=sys.stderr)
                continue
            # a random image (the same for every model), a KITTI camera
            feeds[spec] = example_feeds(meta)
            sessions[spec, 'float'] = ort_session(path, threads=args.threads)
            if calib:
                q_path = int8.int8_path_for(path)
                int8.quantize_int8(path, q_path, calib, fmt=args.int8_format or
                                   int8.DEFAULT_FORMAT, quantize_outputs=args.int8_outputs)
                sessions[spec, 'int8'] = ort_session(q_path, threads=args.threads)
                kernels[spec] = ort_operator_summary(q_path, args.threads, feeds[spec],
                                                     os.path.join(tmp, f'{i}_opt'))
        times = defaultdict(list)
        for _ in range(args.warmup):
            for (spec, _kind), sess in sessions.items():
                sess.run(None, feeds[spec])
        for _ in range(args.repeats):
            for key, sess in sessions.items():
                start = timer()
                sess.run(None, feeds[key[0]])
                times[key].append(timer() - start)
    reduce = statistics.median if args.stat == 'median' else min
    ms = {key: 1000 * reduce(t) for key, t in times.items()}
    return ({s: v for (s, kind), v in ms.items() if kind == 'float'},
            {s: v for (s, kind), v in ms.items() if kind == 'int8'}, kernels)


def ort_operator_summary(path: str, threads: int, feeds: dict, prefix: str) -> str:
    """``domain.OpType xcount time%`` of the graph onnxruntime runs for ``path`` (its
    optimised graph, written with ``optimized_model_filepath``; time from one profiled run on
    the graph inputs ``feeds``)."""
    import glob

    import onnx
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.optimized_model_filepath = prefix + '.onnx'
    opts.enable_profiling = True
    opts.profile_file_prefix = prefix
    opts.log_severity_level = 3  # no warning about saving a machine-specific optimised graph
    sess = ort.InferenceSession(path, sess_options=opts, providers=['CPUExecutionProvider'])
    sess.run(None, feeds)
    with open(sess.end_profiling()) as f:
        events = json.load(f)
    count, spent, op_of = defaultdict(int), defaultdict(float), {}
    for node in onnx.load(prefix + '.onnx').graph.node:
        op_of[node.name] = f'{node.domain + "." if node.domain else ""}{node.op_type}'
        count[op_of[node.name]] += 1
    for ev in events:
        if ev.get('cat') == 'Node' and ev['name'].endswith('_kernel_time'):
            node = ev['name'][:-len('_kernel_time')]
            spent[op_of.get(node, ev['args'].get('op_name', '?'))] += ev['dur']
    for stale in glob.glob(prefix + '*'):
        os.remove(stale)
    total = sum(spent.values()) or 1.0
    return ', '.join(f'{op} x{n} {100 * spent[op] / total:.0f}%'
                     for op, n in sorted(count.items(), key=lambda kv: -spent[kv[0]]))


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '|'.join('---' for _ in header) + '|']
    lines += ['| ' + ' | '.join(r) + ' |' for r in rows]
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.chdir(REPO)
    if args.memory_child:
        memory_child(args.memory_child, args)
        return
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    from mmengine.logging import MMLogger
    MMLogger.get_instance('mmengine').setLevel('WARNING')  # no per-parameter optimizer lines
    specs = list(args.configs) + ([OFFICIAL] if args.official_root else [])
    models = {spec: build(spec, args) for spec in specs}
    names = {spec: short_name(spec) for spec in specs}
    print(f'torch {torch.__version__}, {args.threads} threads, device {args.device}, '
          f'input 3x{args.height}x{args.width}')

    if args.train:
        rows = []
        for spec, model in models.items():
            ips = train_images_per_s(spec, model, args)
            rows.append([names[spec], f'{count_parameters(model) / 1e6:.2f}', f'{ips:.2f}'])
            print(f'{names[spec]}: {ips:.2f} images/s', flush=True)
        print(f'\nTraining, batch {args.batch_size}, 3x{args.height}x{args.width}'
              f'{", AMP" if args.amp else ""}, {args.device}: median of {args.repeats} steps '
              f'after {args.warmup}; ours: train_step (config losses, backward, optimizer '
              'step) on a kitti batch, official: forward + backward + SGD step of a surrogate '
              'loss\n')
        print(markdown_table(['model', 'params (M)', 'train images/s'], rows))
        return

    x = torch.randn(1, 3, args.height, args.width)
    nets = {spec: forward_module(spec, m).eval() for spec, m in models.items()}
    macs = {}
    if not args.no_flops:
        for spec, net in nets.items():
            macs[spec] = count_macs(net, x)
    latency = interleaved_latency(nets, x, args.warmup, args.repeats, args.clock, args.stat)
    latency_cl = {}
    if not args.no_channels_last:
        x_cl = x.contiguous(memory_format=torch.channels_last)
        for net in nets.values():
            net.to(memory_format=torch.channels_last)
        latency_cl = interleaved_latency(nets, x_cl, args.warmup, args.repeats, args.clock,
                                         args.stat)
        for net in nets.values():
            net.to(memory_format=torch.contiguous_format)
    memory = {} if args.no_memory else {spec: peak_memory(spec, args) for spec in specs}
    latency_ort, latency_int8, kernels = {}, {}, {}
    if not args.no_onnxruntime:
        if _have_onnxruntime():
            latency_ort, latency_int8, kernels = ort_latency(
                {s: m for s, m in models.items() if s != OFFICIAL}, args)
        else:
            print('[onnxruntime] column skipped: onnx / onnxruntime not installed '
                  '(EXTRAS=deploy make env)', file=sys.stderr)

    reference = OFFICIAL if OFFICIAL in specs else specs[0]
    unit = 'ms' if args.clock == 'wall' else 'CPU ms'
    header = ['model', 'params (M)', 'GMACs', f'latency ({unit})']
    if latency_cl:
        header.append(f'channels_last ({unit})')
    if latency_ort:
        header.append(f'onnxruntime ({unit})')
    if latency_int8:
        header += [f'int8 onnxruntime ({unit})', 'int8 vs float onnxruntime']
    header.append(f'speed-up vs {names[reference]}')
    if memory:
        header.append('peak RSS / forward (MiB)')
    rows = []
    best_ref = min(latency[reference], latency_cl.get(reference, float('inf')),
                   latency_ort.get(reference, float('inf')))
    for spec in specs:
        best = min(latency[spec], latency_cl.get(spec, float('inf')),
                   latency_ort.get(spec, float('inf')))
        row = [names[spec], f'{count_parameters(models[spec]) / 1e6:.2f}',
               f'{macs[spec][0] / 1e9:.1f}' if spec in macs else '-', f'{latency[spec]:.0f}']
        if latency_cl:
            row.append(f'{latency_cl[spec]:.0f}')
        if latency_ort:
            row.append(f'{latency_ort[spec]:.0f}' if spec in latency_ort else '-')
        if latency_int8:
            q = latency_int8.get(spec)
            row += [f'{q:.0f}' if q else '-', f'{latency_ort[spec] / q:.2f}x' if q else '-']
        row.append(f'{best_ref / best:.2f}x')
        if memory:
            m = memory.get(spec)
            row.append(f'{m["peak_mib"]:.0f} / +{m["delta_mib"]:.0f}' if m else '-')
        rows.append(row)
    print(f'\nBatch 1, 3x{args.height}x{args.width}, torch.set_num_threads({args.threads}), '
          f'{args.clock} clock, inference mode, {args.stat} of {args.repeats} after {args.warmup} '
          'warm-up; GMACs by mmengine.analysis.FlopAnalyzer (1 multiply-add = 1); speed-up '
          'from the best of the memory formats' + (' and onnxruntime (CPU provider, same '
          'threads, the exported graph: network + decoding)' if latency_ort else '')
          + ('; int8: onnxruntime static int8 (tools/deployment/export_onnx.py --int8, '
             f'{args.calib_count} calibration frames, output 1x1 layers '
             f'{"int8" if args.int8_outputs else "float"}), not counted in the speed-up'
             if latency_int8 else '') + '; peak RSS: whole process / increase during '
          'one forward' + ('; BatchNorm folded into convolutions' if args.fuse_conv_bn else '')
          + '.\n')
    print(markdown_table(header, rows))
    for spec, summary in kernels.items():
        print(f'\n{names[spec]} int8: operators onnxruntime runs (optimised graph, share of '
              f'one profiled run): {summary}')

    if args.profile:
        cl = args.profile_format == 'channels_last'
        fmt = torch.channels_last if cl else torch.contiguous_format
        xp = x.contiguous(memory_format=fmt)
        for spec, net in nets.items():
            net.to(memory_format=fmt)
            print(f'\n{names[spec]}: per-module latency (ms, {args.profile_format}, nested '
                  'modules overlap)' + (', MACs (G)' if spec in macs else ''))
            by_module = macs.get(spec, (0, {}))[1]
            for name, ms in module_profile(net, xp, 4, args.repeats, args.clock):
                g = by_module.get(name)
                print(f'  {name:45s} {ms:8.1f}' + (f'  {g / 1e9:7.2f}' if g else ''))
            print(f'\n{names[spec]}: slowest operators (torch.profiler, one forward)')
            print(operator_profile(net, xp))
            net.to(memory_format=torch.contiguous_format)
