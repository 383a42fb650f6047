"""Data generated in several processes: the blocks, merged, are what one process generates."""

import pytest
import torch

from lowprec.cli import main
from lowprec.data import PROBLEMS
from lowprec.data.base import read_cache_arrays
from lowprec.data.parallel import blocks, shifted

from .test_data_generators import SMALL


def test_blocks_cover_the_indices_in_order():
    assert blocks(10, 3) == [(0, 3), (3, 6), (6, 10)]
    assert blocks(2, 4) == [(0, 1), (1, 2)]  # no empty block
    assert blocks(5, 1) == [(0, 5)]


@pytest.mark.parametrize("name", sorted(SMALL))
def test_shifted_blocks_concatenate_to_the_whole(name):
    params = PROBLEMS[name].params.from_kwargs(n=5, seed=3, **SMALL[name])
    whole = params.generate(progress=False)
    parts = [shifted(params, lo, hi).generate(progress=False) for lo, hi in blocks(5, 2)]
    for want, *got in zip(whole, *parts):
        # Per-sample solvers agree bit for bit; batched torch solvers to rounding (batches split elsewhere).
        torch.testing.assert_close(torch.cat(got), want, rtol=1e-5, atol=1e-6)


def test_two_processes_write_the_cache_entry_one_process_writes(tmp_path):
    params = PROBLEMS["darcy"].params.from_kwargs(n=4, seed=2, resolution=9)
    argv = ["data", "generate", "darcy", "--n", "4", "--res", "9", "--seed", "2", "--no-progress"]
    assert main([*argv, "--cache-dir", str(tmp_path / "one")]) == 0
    assert main([*argv, "--cache-dir", str(tmp_path / "two"), "--workers", "2"]) == 0
    path_one, path_two = params.cache_path(tmp_path / "one"), params.cache_path(tmp_path / "two")
    assert path_one.name == path_two.name
    for name, a in read_cache_arrays(path_one, params).items():
        assert torch.equal(read_cache_arrays(path_two, params)[name], a), name


def test_workers_without_the_cache_is_refused(capsys):
    assert main(["data", "generate", "darcy", "--n", "2", "--res", "9", "--workers", "2", "--no-cache"]) == 2
    assert "drop --no-cache" in capsys.readouterr().err
