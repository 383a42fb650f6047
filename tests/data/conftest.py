import pytest
import torch


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    """Every test gets its own cache directory: nothing is ever written to ~/.cache."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("LOWPREC_CACHE", str(cache))
    return cache


@pytest.fixture(autouse=True)
def _one_thread():
    """The solvers' arrays here are tiny: one thread avoids waiting for a second on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
