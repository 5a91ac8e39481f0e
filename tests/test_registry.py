"""Every public component is registered in the mmdet3d registry it belongs to, and another
project's config can use them through ``custom_imports``."""
import subprocess
import sys
import textwrap

import pytest
from mmdet3d.registry import (
    DATASETS,
    HOOKS,
    INFERENCERS,
    METRICS,
    MODELS,
    PARAM_SCHEDULERS,
    TASK_UTILS,
    TRANSFORMS,
)
from mmengine.registry import OPTIM_WRAPPERS, RUNNERS

import monodle_plugin  # noqa: F401  (registers)

# Every public component, by the registry a user's config reaches it through.
EXPECTED = {
    MODELS: ['UltralyticsBackbone', 'DLAUp', 'NativeNeck', 'CenterNet3DHead', 'MonoDLE',
             'CornerNetFocalLoss',
             'LaplacianAleatoricDepthLoss', 'DimAwareL1Loss', 'MultiBinHeadingLoss',
             'DepthDistillLoss', 'UncertaintyDepthDistillLoss'],
    TRANSFORMS: ['LoadKittiMonoImage', 'LoadMonoDLEAnnotations', 'MonoDLEAffineAug',
                 'LoadDA3Depth', 'EncodeMonoDLETargets', 'PackMonoDLEInputs'],
    DATASETS: ['MonoDLEKittiDataset'],
    METRICS: ['KittiAP40Metric'],
    HOOKS: ['DistillWeightHook', 'FiniteLossHook', 'GlobalLossLogHook',
            'MonoDLEVisualizationHook', 'NormEvalHook', 'ResumableCheckpointHook',
            'ResumeCheckHook'],
    PARAM_SCHEDULERS: ['MonoDLECosineWarmupLR', 'MonoDLECosineWarmupParamScheduler'],
    # mmengine's root registry: the train tools build the runner before a default scope exists
    RUNNERS: ['MonoDLERunner'],
    # mmengine's root registry (mmdet3d's child falls back to it): tools/train.py --amp on CPU
    OPTIM_WRAPPERS: ['BF16OptimWrapper'],
    TASK_UTILS: ['MonoDLEBBoxCoder'],
    # issue 22: under its class name and the short name 'monodle'
    INFERENCERS: ['MonoDLEInferencer', 'monodle'],
}


@pytest.mark.parametrize('registry', list(EXPECTED), ids=lambda r: r.name)
def test_components_registered(registry):
    missing = [name for name in EXPECTED[registry] if registry.get(name) is None]
    assert not missing, f'not registered in {registry.scope} {registry.name}: {missing}'


def test_every_package_class_registered():
    """Each class a sub-package exports in ``__all__`` is in that sub-package's registry, and
    the registries hold no component of ours that EXPECTED does not list."""
    import importlib
    sub_registries = {
        'monodle_plugin.models': MODELS,
        'monodle_plugin.datasets.transforms': TRANSFORMS,
        'monodle_plugin.evaluation.metrics': METRICS,
        'monodle_plugin.engine.hooks': HOOKS,
        'monodle_plugin.engine.schedulers': PARAM_SCHEDULERS,
        'monodle_plugin.engine.runners': RUNNERS,
        'monodle_plugin.engine.optim_wrappers': OPTIM_WRAPPERS,
        'monodle_plugin.models.task_modules': TASK_UTILS,
    }
    unregistered = []
    for module_name, registry in sub_registries.items():
        module = importlib.import_module(module_name)
        for name in getattr(module, '__all__', []):
            obj = getattr(module, name)
            if isinstance(obj, type) and registry.get(name) is None:
                unregistered.append(f'{module_name}.{name}')
    assert not unregistered, unregistered
    for registry, names in EXPECTED.items():
        ours = sorted(k for k, v in registry.module_dict.items()
                      if v.__module__.startswith('monodle_plugin'))
        assert ours == sorted(names), f'{registry.name}: registered {ours}, EXPECTED {names}'


def test_import_twice_is_harmless():
    import importlib
    importlib.reload(importlib.import_module('monodle_plugin'))
    assert MODELS.get('DLAUp') is not None


def test_custom_imports_in_fresh_process(tmp_path):
    """A config of another project builds our DLAUp neck by name through custom_imports."""
    cfg = tmp_path / 'other_project_cfg.py'
    cfg.write_text(textwrap.dedent("""
        default_scope = 'mmdet3d'
        custom_imports = dict(imports=['monodle_plugin'], allow_failed_imports=False)
        neck = dict(type='DLAUp', in_channels=[16, 32, 64, 128], strides=[4, 8, 16, 32])
    """))
    script = textwrap.dedent(f"""
        from mmengine.config import Config
        from mmengine.registry import init_default_scope
        from mmengine.utils import import_modules_from_strings
        cfg = Config.fromfile({str(cfg)!r})
        import_modules_from_strings(**cfg.custom_imports)
        init_default_scope(cfg.default_scope)
        from mmdet3d.registry import MODELS
        neck = MODELS.build(cfg.neck)
        print(type(neck).__module__, type(neck).__name__)
    """)
    out = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'monodle_plugin' in out.stdout and 'DLAUp' in out.stdout
