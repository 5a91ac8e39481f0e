"""Resume: SIGKILL mid-epoch / during checkpoint saving, then --resume (ResumableCheckpointHook)."""
import glob
import os
import random
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from tool_helpers import REPO, TINY_CONFIG, run_tool, tool_env

from monodle_plugin.engine.hooks import resumable_checkpoint_hook
from monodle_plugin.engine.hooks.resumable_checkpoint_hook import (
    capture_rng_state,
    restore_rng_state,
)
from monodle_plugin.utils.checkpoint_loading import load_checkpoint_file

NO_VAL = ['train_cfg.val_begin=1000']  # these tests are about training state only


def _load(path):
    # weights_only with our allow-list: the whole training checkpoint (message hub, RNG
    # states, optimizer) must read back without unpickling arbitrary objects
    return load_checkpoint_file(path)


def _train(work_dir, tmp_path, *extra):
    return subprocess.Popen(
        [sys.executable, 'tools/train.py', TINY_CONFIG, '--work-dir', str(work_dir),
         '--cfg-options', *NO_VAL, *extra], cwd=REPO, env=tool_env(),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_rng_state_roundtrip():
    state = capture_rng_state()
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.random(), np.random.rand(), torch.rand(3)  # move every generator on
    restore_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


class _FakeCuda:
    """torch.cuda's generator functions on a machine whose process sees ``count`` GPUs and uses
    ``device``: a state is a (1,) uint8 tensor holding the GPU index it belongs to."""

    def __init__(self, monkeypatch, count: int, device: int):
        self.count, self.device, self.restored = count, device, []
        for name, fn in dict(is_available=lambda: True, is_initialized=lambda: True,
                             device_count=lambda: count, current_device=lambda: device,
                             get_rng_state=self.get, set_rng_state=self.set,
                             get_rng_state_all=lambda: [self.get(i) for i in range(count)],
                             set_rng_state_all=self.set_all).items():
            monkeypatch.setattr(torch.cuda, name, fn)

    def get(self, device='cuda'):
        index = self.device if device == 'cuda' else int(device)
        assert index < self.count, f'GPU {index} of {self.count}'  # torch: IndexError
        return torch.tensor([index], dtype=torch.uint8)

    def set(self, state, device='cuda'):
        self.get(device)
        self.restored.append((int(state[0]), self.device if device == 'cuda' else int(device)))

    def set_all(self, states):
        for i, state in enumerate(states):
            self.set(state, i)


def test_cuda_rng_state_is_the_current_gpus(monkeypatch):
    """Saved: the state of this process's GPU only; restored onto the current GPU, also in a
    run that sees fewer GPUs (torchrun with 2 visible -> slurm with 1 per task)."""
    _FakeCuda(monkeypatch, count=2, device=1)
    state = capture_rng_state()
    assert torch.equal(state['cuda'], torch.tensor([1], dtype=torch.uint8))
    loader = _FakeCuda(monkeypatch, count=1, device=0)
    restore_rng_state(state)
    assert loader.restored == [(1, 0)]


@pytest.mark.parametrize('count,device,entry', [(1, 0, 0), (2, 1, 1), (4, 3, 0)])
def test_old_checkpoint_with_every_gpus_cuda_state(monkeypatch, count, device, entry):
    """Older checkpoints hold get_rng_state_all() (here saved seeing 2 GPUs): the current GPU's
    entry when there is one, else the first, with a log line (restoring the whole list on a
    process that sees 1 GPU was an IndexError)."""
    old = dict(capture_rng_state(), cuda=[torch.tensor([i], dtype=torch.uint8) for i in (0, 1)])
    fake = _FakeCuda(monkeypatch, count=count, device=device)
    lines = []
    monkeypatch.setattr(resumable_checkpoint_hook, 'print_log', lambda msg, **_: lines.append(msg))
    restore_rng_state(old)
    assert fake.restored == [(entry, device)]
    assert len(lines) == 1 and (f'random states of 2 GPU(s) (older format); restoring entry '
                                f'{entry} on GPU {device}') in lines[0]


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run(tmp_path):
    """Kill during epoch 2 of 3, resume from epoch_1: same weights, optimizer, scheduler."""
    ref = _train(tmp_path / 'ref', tmp_path)
    killed = _train(tmp_path / 'run', tmp_path)
    seen = []
    for line in killed.stdout:
        seen.append(line)
        if 'Epoch(train) [2][2/3]' in line:  # mid-epoch 2, after epoch_1 was saved
            killed.send_signal(signal.SIGKILL)
            break
    killed.wait(timeout=600)
    ref_out = ref.communicate(timeout=600)[0]
    assert ref.returncode == 0, ref_out[-3000:]
    assert killed.returncode == -signal.SIGKILL, ''.join(seen)[-3000:]
    last = (tmp_path / 'run' / 'last_checkpoint').read_text()
    assert last.endswith('epoch_1.pth') and os.path.isfile(last)

    resumed = _train(tmp_path / 'run', tmp_path, '--resume')
    out = resumed.communicate(timeout=600)[0]
    assert resumed.returncode == 0, out[-3000:]
    assert 'resumed epoch: 1, iter: 3' in out  # counters restored
    import json  # run_info.json of the resumed run says what it continued (issue 25)
    infos = [json.loads(p.read_text()) for p in (tmp_path / 'run').glob('*/run_info.json')]
    resumed_info = [i for i in infos if i.get('resumed_from')]
    assert len(infos) == 2 and len(resumed_info) == 1, infos
    assert resumed_info[0]['resumed_from'] == last and resumed_info[0]['resumed_iter'] == 3
    assert 'Restored the Python / NumPy / torch random states' in out

    a = _load(glob.glob(str(tmp_path / 'ref' / '*' / 'epoch_3.pth'))[0])
    b_path = (tmp_path / 'run' / 'last_checkpoint').read_text()
    assert os.path.dirname(b_path) == os.path.dirname(last)  # same run folder as before
    b = _load(b_path)
    assert (a['meta']['epoch'], a['meta']['iter']) == (b['meta']['epoch'], b['meta']['iter']) \
        == (3, 9)
    for key, value in a['state_dict'].items():  # bit-identical: RNG (flip / crop) restored too
        assert torch.equal(value, b['state_dict'][key]), key
    opt_a, opt_b = a['optimizer']['state'], b['optimizer']['state']
    assert opt_a.keys() == opt_b.keys()
    for idx in opt_a:
        for name, value in opt_a[idx].items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(opt_b[idx][name]))
    assert a['optimizer']['param_groups'][0]['lr'] == b['optimizer']['param_groups'][0]['lr']
    assert a['param_schedulers'] == b['param_schedulers']


KILL_DURING_SAVE = textwrap.dedent('''
    import os, runpy, signal, sys
    from mmengine.fileio.backends import local_backend
    put = local_backend.LocalBackend.put
    def half_then_die(self, obj, filepath):
        if 'epoch_2' in str(filepath):  # write half of the checkpoint, then SIGKILL
            with open(filepath, 'wb') as f:
                f.write(obj[:len(obj) // 2])
                f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return put(self, obj, filepath)
    local_backend.LocalBackend.put = half_then_die
    sys.argv = ['tools/train.py'] + sys.argv[1:]
    runpy.run_path('tools/train.py', run_name='__main__')
''')


@pytest.mark.slow
def test_sigkill_while_saving_leaves_a_loadable_last_checkpoint(tmp_path):
    script = tmp_path / 'kill_in_save.py'
    script.write_text(KILL_DURING_SAVE)
    work = tmp_path / 'run'
    # max_keep_ckpts=1: mmengine's own hook deletes epoch_1 *before* writing epoch_2
    proc = subprocess.run(
        [sys.executable, str(script), TINY_CONFIG, '--work-dir', str(work), '--cfg-options',
         *NO_VAL, 'default_hooks.checkpoint.max_keep_ckpts=1'], cwd=REPO,
        env=tool_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stdout[-3000:] + proc.stderr[-3000:]
    last = (work / 'last_checkpoint').read_text()
    assert last.endswith('epoch_1.pth')
    ckpt = _load(last)  # complete and loadable
    assert (ckpt['meta']['epoch'], ckpt['meta']['iter']) == (1, 3)
    assert {'state_dict', 'optimizer', 'param_schedulers', 'message_hub'} <= set(ckpt)
    assert len(ckpt['rng_states']) == 1 and 'numpy' in ckpt['rng_states'][0]
    run_dir = os.path.dirname(last)
    assert not os.path.exists(os.path.join(run_dir, 'epoch_2.pth'))  # no truncated file
    assert os.path.exists(os.path.join(run_dir, '.epoch_2.pth.tmp'))  # the partial write

    resumed = run_tool(['tools/train.py', TINY_CONFIG, '--work-dir', work, '--resume',
                        '--cfg-options', *NO_VAL, 'default_hooks.checkpoint.max_keep_ckpts=1',
                        'train_cfg.max_epochs=2'], tmp_path)
    assert 'resumed epoch: 1, iter: 3' in resumed.stdout + resumed.stderr
    assert _load((work / 'last_checkpoint').read_text())['meta']['epoch'] == 2
    assert not os.path.exists(last)  # max_keep_ckpts=1 pruned epoch_1 after epoch_2 was safe
