"""Suite-wide fixtures."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread per test: the suite runs two pytest workers on two cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def single_process_group(tmp_path):
    """A one-process gloo process group (world size 1) for the duration of a test: what
    mmcv's SyncBatchNorm or a DDP wrapper need to be built in-process."""
    import torch.distributed as dist
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/process_group', rank=0,
                            world_size=1)
    yield
    dist.destroy_process_group()
