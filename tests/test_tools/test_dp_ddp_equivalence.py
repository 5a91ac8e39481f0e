"""tools/dp_ddp_equivalence.py: the calculator and the DDP == single-process gradient check."""
import itertools
import json

import pytest
from tool_helpers import run_tool

from monodle_plugin.commands import dp_ddp_equivalence as calc
from monodle_plugin.engine.dp_ddp_equivalence import equivalent_settings, gpu_table
from monodle_plugin.utils.cli import UserError


def seed_compute_equivalence(dp_total_batch, dp_lr, dp_num_gpus, ddp_world_size,
                             ddp_per_gpu_batch=None):
    """Transcription of the seed's ``compute_equivalence`` (MonoDDLE a1cab35,
    tools/dp_ddp_equivalence.py), the fields its report prints."""
    if ddp_per_gpu_batch is None:
        ddp_per_gpu_batch = max(1, dp_total_batch // ddp_world_size)
    ddp_total_batch = ddp_per_gpu_batch * ddp_world_size
    ddp_lr = dp_lr * (ddp_total_batch / dp_total_batch)
    return ddp_per_gpu_batch, ddp_total_batch, ddp_lr, ddp_total_batch == dp_total_batch


def test_equals_the_seed_calculator():
    """Per-GPU batch, total, lr (bit for bit, not to 6 digits) and exactness as the seed's."""
    for dp_batch, dp_gpus, ddp_gpus, per_gpu in itertools.product(
            [1, 3, 16, 17, 32], [1, 3, 8], [None, 1, 2, 4, 5, 8, 16], [None, 1, 2, 7]):
        res = equivalent_settings(dp_batch, 0.00125, dp_gpus, ddp_gpus, per_gpu)
        seed = seed_compute_equivalence(dp_batch, 0.00125, dp_gpus,
                                        ddp_gpus if ddp_gpus else dp_gpus, per_gpu)
        assert (res['per_gpu'], res['total'], res['lr'], res['same_total']) == seed, \
            (dp_batch, dp_gpus, ddp_gpus, per_gpu)


def test_same_total_batch_keeps_lr():
    res = equivalent_settings(16, 0.00125, 8, 4)
    assert res['per_gpu'] == 4 and res['total'] == 16 and res['same_total']
    assert res['lr'] == 0.00125 and res['dp_per_replica'] == 2


def test_larger_total_scales_lr_linearly():
    res = equivalent_settings(16, 0.00125, 8, 4, ddp_batch=8)
    assert res['total'] == 32 and res['lr'] == pytest.approx(0.0025) and not res['same_total']


def test_indivisible_batch_reports_remainder():
    res = equivalent_settings(16, 0.00125, 8, 3)
    assert (res['per_gpu'], res['total'], res['remainder']) == (5, 15, 1)
    assert res['lr'] == 0.00125 * (15 / 16)


def test_more_gpus_than_samples_one_per_gpu():
    """The seed's advice: one sample per GPU and the lr scaled (no exit)."""
    res = equivalent_settings(2, 0.00125, 8, 4)
    assert (res['per_gpu'], res['total'], res['batch_grows']) == (1, 4, True)
    assert res['lr'] == 0.00125 * 2


def test_gpu_table_is_the_seeds():
    rows = gpu_table(16, 0.00125, 8)
    assert [(r['ddp_gpus'], r['per_gpu'], r['total']) for r in rows] == \
        [(1, 16, 16), (2, 8, 16), (4, 4, 16), (8, 2, 16)]
    assert [r['ddp_gpus'] for r in gpu_table(3, 0.001, 1)] == [1, 2]  # n > batch left out


def test_seed_acceptance_command(capsys):
    """The seed's own example: the same per-GPU batch, total and lr as its tool prints
    (8 GPUs, 2 per GPU, 16, 0.00125; ddp-gpus defaults to dp-gpus)."""
    assert calc.main(['--dp-batch', '16', '--dp-lr', '0.00125', '--dp-gpus', '8',
                      '--ddp-per-gpu-batch', '2', '-v']) == 0
    out = capsys.readouterr().out
    assert '8 process(es) x 2 per GPU = total 16, lr 0.00125' in out
    assert 'Per-GPU batch size : 2\n' in out and 'Total batch size   : 16\n' in out
    assert 'Learning rate      : 0.00125\n' in out
    assert 'BatchNorm' in out and 'global_normalizer' in out  # -v: the derivation
    assert '       4 |             4 |          16 | 0.00125' in out  # the seed's table
    assert 'differs from the seed' in out


def test_full_precision_lr_and_aliases(capsys):
    assert calc.main(['--dp-batch', '16', '--dp-lr', '0.001', '--ddp-gpus', '3']) == 0
    out = capsys.readouterr().out
    assert f'Learning rate      : {0.001 * (15 / 16)!r}\n' in out  # 0.0009375, all digits
    assert calc.main(['--dp-batch', '16', '--dp-lr', '0.0001234567891', '--ddp-gpus', '4',
                      '--ddp-batch', '8']) == 0  # our old flag name still works
    assert f'lr {0.0001234567891 * 2!r}' in capsys.readouterr().out


def test_cli_output_and_errors(capsys):
    assert calc.main(['--dp-batch', '16', '--dp-lr', '0.00125', '--dp-gpus', '8',
                      '--ddp-gpus', '4', '--verbose']) == 0
    out = capsys.readouterr().out
    assert '4 process(es) x 4 per GPU = total 16, lr 0.00125' in out
    assert 'tools/dist_train.sh CONFIG 4' in out
    assert calc.main(['--dp-batch', '2', '--ddp-gpus', '4']) == 0
    assert '1 sample per GPU' in capsys.readouterr().out
    # user errors: the entry point (run_cli) prints one line and exits 2
    with pytest.raises(UserError, match='--dp-batch must be >= 1'):
        calc.main(['--dp-batch', '0'])
    with pytest.raises(UserError, match='--ddp-per-gpu-batch must be >= 1'):
        calc.main(['--ddp-per-gpu-batch', '0'])


@pytest.mark.slow
def test_simulate_ddp_gradients_equal_single_process(tmp_path):
    """2 gloo processes vs 1 process, real head + all losses, ranks with unequal objects."""
    out = tmp_path / 'sim.json'
    proc = run_tool(['tools/dp_ddp_equivalence.py', '--simulate', '--json', out], tmp_path)
    assert 'DDP gradients equal single-process gradients' in proc.stdout
    sims = json.loads(out.read_text())['simulation']
    assert len(sims) == 2
    for sim in sims:
        counts = sim['objects_per_rank']
        assert counts[0] != counts[1]
        assert sim['max_abs_diff'] <= 1e-6, sim
        # per-rank counts (naive DDP) differ by orders of magnitude more: the check can fail
        assert sim['local_count_max_abs_diff'] > 1e-3, sim
    assert min(sims[1]['objects_per_rank']) == 0  # one rank without any object
