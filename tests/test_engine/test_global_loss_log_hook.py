"""GlobalLossLogHook: logged losses are the mean over DDP ranks (2 gloo processes)."""
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp


class _Logger:
    def warning(self, msg):
        print(msg)


class _Runner:
    logger = _Logger()


def _worker(rank, out_dir):
    torch.set_num_threads(1)
    # a file store: no TCP port that a test running in parallel could take first
    dist.init_process_group('gloo', init_method=f'file://{out_dir}/store', rank=rank,
                            world_size=2)
    from monodle_plugin.engine.hooks.global_loss_log_hook import GlobalLossLogHook
    for same_keys in (True, False):
        outputs = {'loss': torch.tensor(1.0 + rank), 'loss_heatmap': torch.tensor(4.0 * rank),
                   'acc': 0.5}
        if not same_keys and rank == 1:
            outputs['loss_extra'] = torch.tensor(3.0)
        GlobalLossLogHook().after_train_iter(_Runner(), 0, outputs=outputs)
        torch.save(outputs, os.path.join(out_dir, f'{rank}_{int(same_keys)}.pt'))
    dist.barrier()  # no rank tears gloo down while the other still talks to it
    dist.destroy_process_group()


@pytest.mark.slow  # two fresh processes import the OpenMMLab stack (~25 s on 2 cores)
def test_losses_are_averaged_over_ranks(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path), ), nprocs=2, join=True)
    for rank in (0, 1):
        out = torch.load(tmp_path / f'{rank}_1.pt')
        assert out['loss'].item() == 1.5 and out['loss_heatmap'].item() == 2.0
        assert out['acc'] == 0.5  # non-tensors untouched
        # different keys on the ranks: nothing is mixed up, each keeps its own values
        mixed = torch.load(tmp_path / f'{rank}_0.pt')
        assert mixed['loss'].item() == 1.0 + rank


def test_single_process_is_untouched():
    from monodle_plugin.engine.hooks.global_loss_log_hook import GlobalLossLogHook
    outputs = {'loss': torch.tensor(2.0)}
    GlobalLossLogHook().after_train_iter(_Runner(), 0, outputs=outputs)
    assert outputs['loss'].item() == 2.0
