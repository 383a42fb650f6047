import pytest


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    """Every test gets its own cache directory: nothing is ever written to ~/.cache."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("LOWPREC_CACHE", str(cache))
    return cache
