import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_and_threads():
    # One thread: these problems are tiny, and OpenMP thread pools thrash when other jobs share the cores.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)
