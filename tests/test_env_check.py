"""The environment self-check names the wrong piece in one line."""
import importlib.util

import pytest

from monodle_plugin.utils import env_check


def test_current_environment_is_ok():
    assert env_check.environment_problems() == []


def test_numpy2_is_reported(monkeypatch):
    import numpy
    monkeypatch.setattr(numpy, '__version__', '2.1.0')
    problems = env_check.environment_problems()
    assert len(problems) == 1 and 'numpy 2.1.0' in problems[0] and 'numpy<2' in problems[0]


def test_mmcv_without_ops_is_reported(monkeypatch):
    real_find_spec = importlib.util.find_spec

    def fake_find_spec(name, *args, **kwargs):
        return None if name == 'mmcv._ext' else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(env_check.importlib.util, 'find_spec', fake_find_spec)
    problems = env_check.environment_problems()
    assert len(problems) == 1 and 'without its compiled ops' in problems[0]


def test_missing_mmdet3d_is_reported_and_raises(monkeypatch):
    real_find_spec = importlib.util.find_spec

    def fake_find_spec(name, *args, **kwargs):
        return None if name == 'mmdet3d' else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(env_check.importlib.util, 'find_spec', fake_find_spec)
    with pytest.raises(ImportError, match='mmdet3d is not installed'):
        env_check.check_environment()
