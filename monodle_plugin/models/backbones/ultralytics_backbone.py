"""Ultralytics YOLO (v8 / 11 / 26, any scale) as a multi-scale backbone for MonoDLE.

Ultralytics models do not expose intermediate features (``embed=`` returns pooled vectors), so
this module keeps the ``model.model`` layers of an Ultralytics ``DetectionModel`` up to the
deepest layer that is read, and runs them itself following each layer's ``f`` (from) routing and
the list of outputs later layers re-read (Ultralytics' ``save`` list). The detection head and any
layer after the deepest requested one are dropped: no parameters, no compute.

Feature layers are picked from strides by a dry run (one 256 x 256 forward at build time, eval
mode, no gradients): for each requested stride the **last** layer before the detection head whose
output has that stride. This gives the layers the Ultralytics Detect head reads (P3, P4, P5 after
the FPN/PAN neck) plus the last stride-4 backbone layer. Verified picks, ``feature_strides=[4, 8,
16, 32]``, channels at the n scale (other scales: same indices, wider channels):

=========== ================= ===================
family      layer indices     channels (n scale)
=========== ================= ===================
yolov8      2, 15, 18, 21     32, 64, 128, 256
yolo11      2, 16, 19, 22     64, 64, 128, 256
yolo26      2, 16, 19, 22     64, 64, 128, 256
=========== ================= ===================

With ``detect_inputs=True`` the returned maps are exactly the ones the model's own Detect head
reads (its ``f`` list: P3/P4/P5 after the FPN/PAN neck, strides 8/16/32; 15, 18, 21 for YOLOv8,
16, 19, 22 for YOLO11/26), Detect itself dropped: the input of :class:`NativeNeck`.

Weights are strictly offline. A ``.pt`` name is searched, in order, as given (absolute or
relative to the working directory), in ``$MONODLE_WEIGHTS_DIR``, in ``weights_dir`` (default
``checkpoints/``) and in Ultralytics' own ``weights_dir`` setting; if it is absent the build fails
at once with a message saying where to put the file (no download is ever attempted). Before it
first imports ultralytics (when a backbone is built, not when this module is imported), this
module sets ``YOLO_OFFLINE=1`` unless the variable is already set, so that ``import
ultralytics`` does not probe the network.
"""
from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from mmdet3d.registry import MODELS
from mmengine.model import BaseModule
from torch import nn

from ..utils.freezing import freeze, keep_batchnorm_eval

#: Keyword -> default Ultralytics checkpoint (n scale). Any other scale or file: give its name.
ULTRALYTICS_KEYWORDS = {
    'yolo8': 'yolov8n.pt',
    'yolov8': 'yolov8n.pt',
    'yolo11': 'yolo11n.pt',
    'yolo26': 'yolo26n.pt',
}
#: Environment variable naming an extra folder searched for ``.pt`` files.
WEIGHTS_DIR_ENV = 'MONODLE_WEIGHTS_DIR'
#: Where Ultralytics publishes its checkpoints (only quoted in error messages, never fetched).
ULTRALYTICS_ASSETS_URL = 'https://github.com/ultralytics/assets/releases'

_YAML_SUFFIXES = ('.yaml', '.yml')


def _offline_ultralytics() -> None:
    """``YOLO_OFFLINE=1`` (unless set) before ultralytics is imported: no DNS probe; then undo
    the process-wide patches ultralytics applies when imported.

    Called where this module imports ultralytics, so that importing the package changes no
    environment variable. Ultralytics replaces ``PIL.Image.open`` (on an unidentifiable image
    it pip-installs ``pi-heif`` at run time) and ``torch.save`` (retries with sleeps) for the
    whole process; both go back to the originals it keeps, so that our data checks, other
    libraries and checkpoint saving behave as without it (its own modules call their copies).
    """
    os.environ.setdefault('YOLO_OFFLINE', '1')
    import PIL.Image
    import torch
    from ultralytics.utils import patches
    for owner, name, patched, original in (
            (PIL.Image, 'open', 'image_open', '_image_open'),
            (torch, 'save', 'torch_save', '_torch_save')):
        if (getattr(owner, name) is getattr(patches, patched, None)
                and getattr(patches, original, None) is not None):
            setattr(owner, name, getattr(patches, original))


def resolve_weights_file(name: str | os.PathLike, weights_dir: str | os.PathLike | None
                         ) -> Path | None:
    """Return the local path of a ``.pt`` file, or None if it is not on this machine.

    Searched in order: ``name`` as given, ``$MONODLE_WEIGHTS_DIR/<basename>``,
    ``<weights_dir>/<basename>``, Ultralytics' ``SETTINGS['weights_dir']/<basename>``.
    """
    return next((p for p in _weights_candidates(name, weights_dir) if p.is_file()), None)


def _weights_candidates(name: str | os.PathLike, weights_dir: str | os.PathLike | None
                        ) -> list[Path]:
    path = Path(name).expanduser()
    candidates = [path]
    dirs = [os.environ.get(WEIGHTS_DIR_ENV), weights_dir]
    try:
        _offline_ultralytics()
        from ultralytics.utils import SETTINGS
        dirs.append(SETTINGS.get('weights_dir'))
    except Exception:  # settings unreadable: the other places are still searched
        pass
    for folder in dirs:
        if folder:
            candidates.append(Path(folder).expanduser() / path.name)
    return candidates


def _load_ultralytics_checkpoint(path: Path) -> nn.Module:
    """Load a ``.pt`` in Ultralytics' safe mode: ``torch.load(weights_only=True)`` against its
    allow-list of known model classes, so a crafted file cannot run code (needs ultralytics with
    ``torch_safe_load(..., safe_only=True)``, 8.4.x; older versions are refused)."""
    _offline_ultralytics()
    import inspect

    from ultralytics.nn import tasks
    if 'safe_only' not in inspect.signature(tasks.torch_safe_load).parameters:
        raise ImportError('UltralyticsBackbone: the installed ultralytics cannot load .pt files '
                          'safely (no torch_safe_load(safe_only=...)); install the version of '
                          'requirements/ (ultralytics==8.4.190)')
    try:
        ckpt, _ = tasks.torch_safe_load(str(path), safe_only=True)
    except TypeError as err:  # Ultralytics reports unreadable / refused files as TypeError
        raise ValueError(f'UltralyticsBackbone: {path}: ' + ' '.join(str(err).split())) from None
    model = ckpt.get('ema') or ckpt.get('model') if isinstance(ckpt, dict) else None
    if not isinstance(model, nn.Module):
        raise ValueError(f'UltralyticsBackbone: {path} holds no Ultralytics model '
                         "(no 'model' / 'ema' entry)")
    model = model.float().eval()
    for m in model.modules():  # as ultralytics.nn.tasks.load_checkpoint(inplace=True)
        if hasattr(m, 'inplace'):
            m.inplace = True
    return model


def _build_from_yaml(cfg: str | dict) -> nn.Module:
    _offline_ultralytics()
    from ultralytics.nn.tasks import DetectionModel
    return DetectionModel(cfg, verbose=False)


def build_ultralytics_model(ultralytics_model: str, pretrained: bool = True,
                            weights_dir: str | os.PathLike | None = 'checkpoints') -> nn.Module:
    """Build the full Ultralytics model (head included) described by ``ultralytics_model``.

    Args:
        ultralytics_model: a keyword (``yolo8``, ``yolo11``, ``yolo26``: n scale), a model yaml
            (``yolov8s.yaml``, shipped by Ultralytics, or a path) or a ``.pt`` file name / path.
        pretrained: for keywords and ``.pt`` names, load the checkpoint's weights (the file must
            exist locally). False builds the same architecture with random initialisation
            (from the same-stem yaml Ultralytics ships, else from the local file's own yaml).
        weights_dir: folder searched for ``.pt`` files (see :func:`resolve_weights_file`).

    Returns:
        The Ultralytics model (``.model`` is the layer sequence, ``.save`` the re-read outputs).
    """
    spec = str(ultralytics_model)
    if '://' in spec:
        raise ValueError(f'UltralyticsBackbone: ultralytics_model={spec!r} is a URL; weights are '
                         'never downloaded: fetch the file once and give its local path.')
    spec = ULTRALYTICS_KEYWORDS.get(spec.lower(), spec)
    suffix = Path(spec).suffix.lower()
    if suffix in _YAML_SUFFIXES:
        if pretrained:
            warnings.warn(f'UltralyticsBackbone: {spec} is a model yaml: random initialisation '
                          '(pretrained=True only applies to .pt files).', stacklevel=2)
        return _build_from_yaml(_existing_yaml(spec))
    if suffix != '.pt':
        raise ValueError(
            f'UltralyticsBackbone: ultralytics_model={ultralytics_model!r} is neither a keyword '
            f'({", ".join(sorted(ULTRALYTICS_KEYWORDS))}) nor a .pt / .yaml file name.')
    path = resolve_weights_file(spec, weights_dir)
    if pretrained:
        if path is None:
            looked = ', '.join(str(p) for p in _weights_candidates(spec, weights_dir))
            raise FileNotFoundError(
                f'UltralyticsBackbone: pretrained weights {spec!r} not found on this machine '
                f'(looked in: {looked}). No download is attempted: fetch {Path(spec).name} once '
                f'from {ULTRALYTICS_ASSETS_URL} and put it in {weights_dir or "checkpoints"}/ '
                f'(or the folder named by ${WEIGHTS_DIR_ENV}, or give its path in '
                f'ultralytics_model), or set pretrained=False for random initialisation.')
        return _load_ultralytics_checkpoint(path)
    # Random initialisation of the checkpoint's architecture: the local file's own yaml if the
    # file is here (exact architecture), else the same-stem yaml Ultralytics ships.
    if path is not None:
        return _build_from_yaml(dict(_load_ultralytics_checkpoint(path).yaml))
    try:
        return _build_from_yaml(_existing_yaml(Path(spec).with_suffix('.yaml').name))
    except FileNotFoundError:
        raise FileNotFoundError(
            f'UltralyticsBackbone: cannot build {spec!r} with pretrained=False: Ultralytics '
            f'ships no {Path(spec).stem}.yaml and the .pt is not on this machine to read its '
            f'architecture from. Give a model yaml in ultralytics_model.') from None


def _existing_yaml(spec: str) -> str:
    """Fail with a clear message if Ultralytics cannot find this model yaml."""
    _offline_ultralytics()
    from ultralytics.utils.checks import check_yaml
    base = Path(spec).name
    # Ultralytics resolves 'yolov8s.yaml' to its unified 'yolov8.yaml' plus the scale letter.
    unified = re.sub(r'(\d+)([nslmx])(.+)?$', r'\1\3', Path(base).stem) + Path(base).suffix
    for name in (spec, unified):
        try:
            if check_yaml(name, hard=False):
                return spec
        except FileNotFoundError:
            pass
    raise FileNotFoundError(f'UltralyticsBackbone: model yaml {spec!r} not found (neither a '
                            'local file nor one shipped with the installed ultralytics).')


def _from_indices(layer: nn.Module) -> list[int]:
    """Absolute indices of the earlier outputs a layer reads (its ``f`` without -1)."""
    f = layer.f if isinstance(layer.f, (list, tuple)) else [layer.f]
    return [j % layer.i for j in f if j != -1]


def _is_head(layer: nn.Module) -> bool:
    _offline_ultralytics()
    from ultralytics.nn.modules.head import Classify, Detect
    heads = (Detect, Classify)
    try:
        from ultralytics.nn.modules.head import RTDETRDecoder
        heads += (RTDETRDecoder, )
    except ImportError:
        pass
    return isinstance(layer, heads)


def _run_layers(layers: Sequence[nn.Module], x: torch.Tensor, keep: set[int]) -> list:
    """Run Ultralytics layers in order; returns the per-layer outputs listed in ``keep``."""
    y = []
    for layer in layers:
        if layer.f != -1:
            x = y[layer.f] if isinstance(layer.f, int) else [
                x if j == -1 else y[j] for j in layer.f
            ]
        x = layer(x)
        y.append(x if layer.i in keep else None)
    return y


@MODELS.register_module()
class UltralyticsBackbone(BaseModule):
    """Feature maps of an Ultralytics YOLO model at chosen strides, detection head removed.

    Args:
        ultralytics_model: ``'yolo8'`` (default), ``'yolo11'``, ``'yolo26'`` (n scale:
            yolov8n.pt, yolo11n.pt, yolo26n.pt), or any Ultralytics model yaml
            (``'yolov8s.yaml'``) or ``.pt`` name / path.
        feature_strides: output strides (input pixels per feature pixel) of the returned maps,
            in the order returned. Each maps to the last non-head layer with that stride.
        feature_indices: explicit Ultralytics layer indices instead of ``feature_strides``.
        detect_inputs: return exactly the maps the model's own Detect head reads (P3/P4/P5
            after its FPN/PAN neck, in Detect's order; Detect itself is dropped and never
            run), for :class:`NativeNeck`. ``feature_indices`` must then be None and
            ``feature_strides`` None or equal to those maps' strides (8, 16, 32).
        pretrained: load the ``.pt`` weights (must exist locally, see the module docstring);
            False: random initialisation from the architecture's yaml.
        weights_dir: folder searched for ``.pt`` files (besides ``$MONODLE_WEIGHTS_DIR``).
        freeze_backbone: True: no parameter requires a gradient and every BatchNorm (torch's
            BatchNorm / SyncBatchNorm, mmcv's SyncBatchNorm after ``--sync_bn mmcv``) stays in
            eval mode (running statistics frozen) even when the model is in train mode.
            ``'weights'``: the seed system's effective regime (its adapter keeps the
            ``requires_grad=False`` that Ultralytics' ``.pt`` files store): no parameter
            requires a gradient, but BatchNorm layers follow the model's mode, so their
            running statistics move during training. False (default): everything trains.
        dry_run_size: side (pixels) of the square dry-run input; a multiple of the largest
            stride in the model.
        channels_last_inference: in eval mode on CPU, convert the input to the channels_last
            memory format; every later convolution (backbone, neck, head) then runs in
            channels_last, faster for the whole MonoDLE on CPU (same numbers to ~1e-6;
            ``tools/benchmark.py`` measures it). Training and GPU inference are untouched.
        init_cfg: mmengine init config (None keeps the Ultralytics / checkpoint weights).

    Attributes:
        out_channels (list[int]): channels of the returned maps (feed to the neck's in_channels).
        strides (list[int]): stride of each returned map.
        feature_indices (list[int]): Ultralytics layer index of each returned map.
        model (nn.ModuleList): Ultralytics layers 0..max(feature_indices) (state-dict keys
            ``model.<i>.*`` as in Ultralytics checkpoints).

    Shapes: input (B, 3, H, W) float, H and W multiples of :attr:`size_divisor` (32 for
    standard models); output tuple of (B, out_channels[k], H / strides[k], W / strides[k]).
    """

    def __init__(self,
                 ultralytics_model: str = 'yolo8',
                 feature_strides: Sequence[int] | None = (4, 8, 16, 32),
                 feature_indices: Sequence[int] | None = None,
                 pretrained: bool = True,
                 weights_dir: str | None = 'checkpoints',
                 freeze_backbone: bool | str = False,
                 dry_run_size: int = 256,
                 channels_last_inference: bool = True,
                 detect_inputs: bool = False,
                 init_cfg: dict | list | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.ultralytics_model = str(ultralytics_model)
        full = build_ultralytics_model(ultralytics_model, pretrained, weights_dir)
        layers = list(full.model)
        strides, channels = self._dry_run(layers, dry_run_size, full.training)
        self.detect_inputs = bool(detect_inputs)
        if self.detect_inputs:
            indices = self._detect_input_indices(layers, strides, feature_strides,
                                                 feature_indices)
        elif feature_indices is not None:
            indices = [int(i) for i in feature_indices]
            for i in indices:
                if not 0 <= i < len(strides) or strides[i] is None:
                    usable = [j for j, s in enumerate(strides) if s is not None]
                    raise ValueError(
                        f'UltralyticsBackbone({self.ultralytics_model}): feature_indices '
                        f'contains {i}, not a feature layer (usable: {usable[0]}..{usable[-1]}).')
        elif feature_strides:
            indices = [self._last_layer_with_stride(strides, int(s)) for s in feature_strides]
        else:
            raise ValueError('UltralyticsBackbone: give feature_strides or feature_indices.')
        self.feature_indices = indices
        self.strides = [strides[i] for i in indices]
        self.out_channels = [channels[i] for i in indices]
        last = max(indices)
        self.model = nn.ModuleList(layers[:last + 1])  # head and unread layers dropped
        del full, layers
        self._keep = {j for layer in self.model for j in _from_indices(layer)} | set(indices)
        self.size_divisor = max(s for s in strides[:last + 1] if s is not None)
        freeze(self.model, freeze_backbone)  # .pt files store requires_grad=False
        #: True (weights and BN statistics fixed), 'weights' (BN statistics move) or False
        self.freeze_backbone = freeze_backbone
        self.channels_last_inference = bool(channels_last_inference)
        self.train(True)

    def _dry_run(self, layers: list[nn.Module], size: int, was_training: bool
                 ) -> tuple[list[int | None], list[int | None]]:
        """Stride and channels of every layer's output (None: head / not a 4D map)."""
        strides, channels = [], []
        mode = [m.training for m in layers]
        for m in layers:
            m.eval()  # never touch BN running statistics
        x = torch.zeros(1, 3, size, size)
        y = []
        with torch.no_grad():
            for layer in layers:
                if _is_head(layer):
                    break
                if layer.f != -1:
                    x = y[layer.f] if isinstance(layer.f, int) else [
                        x if j == -1 else y[j] for j in layer.f
                    ]
                x = layer(x)
                y.append(x)
                if isinstance(x, torch.Tensor) and x.dim() == 4 and size % x.shape[-1] == 0:
                    strides.append(size // x.shape[-1])
                    channels.append(int(x.shape[1]))
                else:
                    strides.append(None)
                    channels.append(None)
        for m, t in zip(layers, mode):
            m.train(t)
        return strides, channels

    def _detect_input_indices(self, layers: list[nn.Module], strides: list[int | None],
                              feature_strides: Sequence[int] | None,
                              feature_indices: Sequence[int] | None) -> list[int]:
        """Layer indices the model's Detect head reads (its ``f``), checked against options."""
        head = layers[-1]
        if not _is_head(head):
            raise ValueError(f'UltralyticsBackbone({self.ultralytics_model}): detect_inputs=True '
                             'needs a model whose last layer is a Detect head.')
        if feature_indices is not None:
            raise ValueError(f'UltralyticsBackbone({self.ultralytics_model}): give either '
                             'detect_inputs=True or feature_indices, not both.')
        indices = _from_indices(head)
        detect_strides = [strides[i] for i in indices]
        if feature_strides is not None and [int(s) for s in feature_strides] != detect_strides:
            raise ValueError(
                f'UltralyticsBackbone({self.ultralytics_model}): detect_inputs=True returns the '
                f'Detect inputs at strides {detect_strides}, but feature_strides='
                f'{list(feature_strides)}; set feature_strides={detect_strides} (or None).')
        return indices

    def _last_layer_with_stride(self, strides: list[int | None], stride: int) -> int:
        hits = [i for i, s in enumerate(strides) if s == stride]
        if not hits:
            have = sorted({s for s in strides if s is not None})
            raise ValueError(f'UltralyticsBackbone({self.ultralytics_model}): no layer at '
                             f'stride {stride}; available strides: {have}.')
        return hits[-1]

    @classmethod
    def infer_out_channels(cls, ultralytics_model: str = 'yolo8', **kwargs) -> list[int]:
        """Channels of the maps a backbone with these arguments returns (for configs).

        Builds the architecture only (``pretrained=False``, no weights needed), e.g.
        ``neck=dict(in_channels=UltralyticsBackbone.infer_out_channels('yolo11'))``.
        """
        kwargs = {k: v for k, v in kwargs.items() if k not in ('type', 'pretrained')}
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            return cls(ultralytics_model, pretrained=False, **kwargs).out_channels

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(B, 3, H, W) -> tuple of maps at :attr:`strides`, in the configured order."""
        h, w = x.shape[-2:]
        if h % self.size_divisor or w % self.size_divisor:
            raise ValueError(f'UltralyticsBackbone({self.ultralytics_model}): input {h}x{w} '
                             f'must be a multiple of {self.size_divisor} in both sides.')
        if self.channels_last_inference and not self.training and x.device.type == 'cpu':
            x = x.contiguous(memory_format=torch.channels_last)
        y = _run_layers(self.model, x, self._keep)
        return tuple(y[i] for i in self.feature_indices)

    def train(self, mode: bool = True) -> UltralyticsBackbone:
        """Set train mode; with ``freeze_backbone`` every BatchNorm stays in eval mode."""
        super().train(mode)
        if mode:  # any BatchNorm type, mmcv's SyncBatchNorm (--sync_bn mmcv) included
            keep_batchnorm_eval(self, getattr(self, 'freeze_backbone', False))
        return self
