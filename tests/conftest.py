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
