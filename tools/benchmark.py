"""Side-by-side cost of MonoDLE variants: parameters, MACs, CPU latency, peak memory.

One run measures every model under the same conditions (the machines are noisy: compare
ratios from one run, never numbers from different runs). Latency rounds are interleaved
across the models so that background load spreads over all of them.

Measured per model, batch 1, 3 x H x W input (default 384 x 1280), inference mode:
- parameters (all of backbone + neck + head);
- GMACs: ``mmengine.analysis.FlopAnalyzer`` (fvcore convention: one multiply-add = one
  "flop", so the number is MACs), traced on one forward;
- latency: median of ``--repeats`` forwards after ``--warmup`` ones, ``torch.set_num_threads``
  threads, in the default (NCHW) and the ``channels_last`` memory format;
- peak RSS: in a fresh subprocess per model, the process' peak resident memory during one
  forward (``ru_maxrss``) and its increase over the resident memory before it.

What is timed is the network (backbone + neck + head raw maps), as the official code's
``CenterNet3D.forward``: no data preprocessing, no decoding, no NMS.

``--official-root`` adds the official MonoDLE ``CenterNet3D(dla34)`` from a folder the user
fetched (e.g. ``git clone https://github.com/xinzhuma/monodle /tmp/ref/monodle``; never commit
it), built with ``pretrained=False``. ``--train`` measures training images/s instead: our models
through ``train_step`` (losses, backward, optimizer step) on a real batch of the config's
training pipeline, the official model forward + backward + SGD step of a surrogate loss (the
sum of its output means; its loss functions cost little next to the network).

Usage::

    python tools/benchmark.py --official-root /tmp/ref/monodle
    python tools/benchmark.py configs/ablation/monodle_yolo8_kitti.py --profile
    python tools/benchmark.py --train --batch-size 2 --data-root demo/kitti_mini/KITTI/
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
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
    parser.add_argument('--no-memory', action='store_true', help='skip the peak RSS column')
    parser.add_argument('--no-flops', action='store_true', help='skip the MACs column')
    parser.add_argument('--profile', action='store_true',
                        help='also print the latency of each module (forward hooks)')
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

class HeadForward(nn.Module):
    """Image tensor (B, 3, H, W) -> tuple of the head's raw maps (backbone, neck, head)."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, img: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feats = self.detector.extract_feat({'imgs': img})
        out = self.detector.bbox_head(feats)
        return tuple(out.values()) if isinstance(out, dict) else tuple(out)


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
    backbone = cfg.model.get('backbone', {})
    if backbone.get('type') == 'UltralyticsBackbone':
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
    import monodle_plugin  # noqa: F401  (registers)
    from mmdet3d.registry import MODELS
    cfg = load_config(path, data_root)
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
        return build_official(args.official_root)
    return build_from_config(spec, args.data_root if args.train else None)


def forward_module(spec: str, model: nn.Module) -> nn.Module:
    return OfficialForward(model) if spec == OFFICIAL else HeadForward(model)


def short_name(spec: str) -> str:
    return 'official MonoDLE (DLA34)' if spec == OFFICIAL else Path(spec).stem


# ----------------------------------------------------------------------------------------
# measurements

def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(net: nn.Module, x: torch.Tensor) -> tuple[float, dict[str, float]]:
    """Total MACs and MACs per top-level module (mmengine FlopAnalyzer, fvcore convention)."""
    from mmengine.analysis import FlopAnalyzer
    analyzer = FlopAnalyzer(net, (x, ))
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    analyzer.tracer_warnings('none')
    with torch.no_grad():
        total = analyzer.total()
    return float(total), {k: float(v) for k, v in analyzer.by_module().items()}


def interleaved_latency(nets: dict[str, nn.Module], x: torch.Tensor, warmup: int,
                        repeats: int) -> dict[str, float]:
    """Median forward time (ms) per model; round r times every model once."""
    times = defaultdict(list)
    with torch.inference_mode():
        for _ in range(warmup):
            for net in nets.values():
                net(x)
        for _ in range(repeats):
            for name, net in nets.items():
                start = time.perf_counter()
                net(x)
                times[name].append(time.perf_counter() - start)
    return {name: 1000 * statistics.median(t) for name, t in times.items()}


def module_profile(net: nn.Module, x: torch.Tensor, depth: int, repeats: int
                   ) -> list[tuple[str, float]]:
    """Median time (ms) of every module down to ``depth`` levels (nested times overlap)."""
    starts, times, handles = {}, defaultdict(list), []
    for name, module in net.named_modules():
        if not name or name.count('.') >= depth:
            continue
        handles.append(module.register_forward_pre_hook(
            lambda m, a, name=name: starts.__setitem__(name, time.perf_counter())))
        handles.append(module.register_forward_hook(
            lambda m, a, o, name=name: times[name].append(time.perf_counter() - starts[name])))
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


def current_rss_mib() -> float:
    with open('/proc/self/statm') as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf('SC_PAGE_SIZE') / 2**20


def memory_child(spec: str, args: argparse.Namespace) -> None:
    """Print JSON {peak_mib, delta_mib}: peak RSS during one forward, in this process."""
    torch.set_num_threads(args.threads)
    net = forward_module(spec, build(spec, args)).eval()
    x = torch.randn(1, 3, args.height, args.width)
    before = current_rss_mib()
    with torch.inference_mode():
        net(x)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps(dict(peak_mib=peak, delta_mib=peak - before)))


def peak_memory(spec: str, args: argparse.Namespace) -> dict | None:
    cmd = [sys.executable, __file__, '--memory-child', spec, '--height', str(args.height),
           '--width', str(args.width), '--threads', str(args.threads)]
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
        cfg.train_dataloader.batch_size = args.batch_size
        cfg.train_dataloader.num_workers = 0
        cfg.train_dataloader.persistent_workers = False
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
        loss = 'train_step' if len(specs) > (OFFICIAL in specs) else ''
        print(f'\nTraining, batch {args.batch_size}{", AMP" if args.amp else ""}; ours: '
              f'{loss} with the config losses, official: surrogate loss\n')
        print(markdown_table(['model', 'params (M)', 'train images/s'], rows))
        return

    x = torch.randn(1, 3, args.height, args.width)
    nets = {spec: forward_module(spec, m).eval() for spec, m in models.items()}
    macs = {}
    if not args.no_flops:
        for spec, net in nets.items():
            macs[spec] = count_macs(net, x)
    latency = interleaved_latency(nets, x, args.warmup, args.repeats)
    latency_cl = {}
    if not args.no_channels_last:
        x_cl = x.contiguous(memory_format=torch.channels_last)
        for net in nets.values():
            net.to(memory_format=torch.channels_last)
        latency_cl = interleaved_latency(nets, x_cl, args.warmup, args.repeats)
        for net in nets.values():
            net.to(memory_format=torch.contiguous_format)
    memory = {} if args.no_memory else {spec: peak_memory(spec, args) for spec in specs}

    reference = OFFICIAL if OFFICIAL in specs else specs[0]
    header = ['model', 'params (M)', 'GMACs', 'CPU latency (ms)']
    if latency_cl:
        header.append('channels_last (ms)')
    header.append(f'speed-up vs {names[reference]}')
    if memory:
        header.append('peak RSS / forward (MiB)')
    rows = []
    best_ref = min(latency[reference], latency_cl.get(reference, float('inf')))
    for spec in specs:
        best = min(latency[spec], latency_cl.get(spec, float('inf')))
        row = [names[spec], f'{count_parameters(models[spec]) / 1e6:.2f}',
               f'{macs[spec][0] / 1e9:.1f}' if spec in macs else '-', f'{latency[spec]:.0f}']
        if latency_cl:
            row.append(f'{latency_cl[spec]:.0f}')
        row.append(f'{best_ref / best:.2f}x')
        if memory:
            m = memory.get(spec)
            row.append(f'{m["peak_mib"]:.0f} / +{m["delta_mib"]:.0f}' if m else '-')
        rows.append(row)
    print(f'\nBatch 1, 3x{args.height}x{args.width}, torch.set_num_threads({args.threads}), '
          f'inference mode, median of {args.repeats} after {args.warmup} warm-up; GMACs by '
          'mmengine.analysis.FlopAnalyzer (1 multiply-add = 1); speed-up from the best of the '
          'two memory formats; peak RSS: whole process / increase during one forward.\n')
    print(markdown_table(header, rows))

    if args.profile:
        for spec, net in nets.items():
            print(f'\n{names[spec]}: per-module latency (ms, NCHW, nested modules overlap)'
                  + (', MACs (G)' if spec in macs else ''))
            by_module = macs.get(spec, (0, {}))[1]
            for name, ms in module_profile(net, x, depth=3, repeats=args.repeats):
                g = by_module.get(name)
                print(f'  {name:45s} {ms:8.1f}' + (f'  {g / 1e9:7.2f}' if g else ''))


if __name__ == '__main__':
    main()
