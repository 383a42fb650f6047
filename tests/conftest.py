import logging

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


def pytest_collection_modifyitems(config, items):
    # GPU tests are skipped with a visible reason, never silently.
    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA device; CI and this machine have none")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


@pytest.fixture
def caplog_lowprec(caplog):
    caplog.set_level(logging.INFO, logger="lowprec")
    return caplog
