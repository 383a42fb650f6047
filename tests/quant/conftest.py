import pytest


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    """Generated data goes to a per-test cache, never ~/.cache."""
    monkeypatch.setenv("LOWPREC_CACHE", str(tmp_path / "cache"))
