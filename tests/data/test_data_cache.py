import h5py
import pytest
import torch

import lowprec.data.base as base
from lowprec.data import CacheError, CacheMismatchError, DarcyParams, darcy_dataset, default_cache_dir, load_or_generate


def counting_generate(monkeypatch):
    """Count calls to DarcyParams.generate."""
    calls = []
    original = DarcyParams.generate

    def wrapped(self, *args, **kwargs):
        calls.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DarcyParams, "generate", wrapped)
    return calls


def test_default_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("LOWPREC_CACHE", str(tmp_path / "here"))
    assert default_cache_dir() == tmp_path / "here"
    monkeypatch.delenv("LOWPREC_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "lowprec"


def test_second_call_loads_from_disk(monkeypatch, _cache_in_tmp):
    calls = counting_generate(monkeypatch)
    first = darcy_dataset(9, 6, seed=0, progress=False)
    files = list(_cache_in_tmp.glob("*.h5"))
    assert len(files) == 1 and files[0].name.startswith("darcy-s9-seed0-")
    second = darcy_dataset(9, 6, seed=0, progress=False)
    assert len(calls) == 1
    assert torch.equal(first.x, second.x) and torch.equal(first.y, second.y)
    assert second.meta["source"] == str(files[0])
    assert second.meta["params"]["n"] == 6


def test_attributes_hold_every_parameter(_cache_in_tmp):
    params = DarcyParams(resolution=9, n=3, seed=5, forcing=2.0, values=(10, 1))
    load_or_generate(params, progress=False)
    with h5py.File(params.cache_path(), "r") as f:
        assert f.attrs["problem"] == "darcy" and f.attrs["seed"] == 5 and f.attrs["n"] == 3
        assert f.attrs["forcing"] == 2.0 and tuple(f.attrs["values"]) == (10.0, 1.0)
        assert f["x"].shape == (3, 1, 9, 9) and f["x"].dtype == "float32"


def test_smaller_request_reads_a_prefix_larger_request_regenerates(monkeypatch):
    calls = counting_generate(monkeypatch)
    big = darcy_dataset(9, 8, seed=0, progress=False)
    small = darcy_dataset(9, 3, seed=0, progress=False)
    assert len(calls) == 1 and torch.equal(small.y, big.y[:3])
    bigger = darcy_dataset(9, 10, seed=0, progress=False)
    assert len(calls) == 2 and torch.equal(bigger.y[:8], big.y)
    assert len(darcy_dataset(9, 10, seed=0, progress=False)) == 10 and len(calls) == 2


def test_distinct_parameters_get_distinct_files(_cache_in_tmp):
    darcy_dataset(9, 2, seed=0, progress=False)
    darcy_dataset(9, 2, seed=1, progress=False)
    darcy_dataset(9, 2, seed=0, forcing=3.0, progress=False)
    darcy_dataset(9, 2, seed=0, forcing=3, progress=False)  # 3 == 3.0: same file
    assert len(list(_cache_in_tmp.glob("*.h5"))) == 3


def test_cache_dir_argument_and_no_cache(tmp_path, _cache_in_tmp):
    darcy_dataset(9, 2, cache_dir=tmp_path / "elsewhere", progress=False)
    assert len(list((tmp_path / "elsewhere").glob("*.h5"))) == 1
    darcy_dataset(9, 2, seed=9, cache=False, progress=False)
    assert not _cache_in_tmp.exists() or not list(_cache_in_tmp.iterdir())


def test_parameter_mismatch_raises_naming_the_parameter():
    params = DarcyParams(resolution=9, n=2, seed=0)
    load_or_generate(params, progress=False)
    with h5py.File(params.cache_path(), "r+") as f:
        f.attrs["tau"] = 2.5  # as if the file had been renamed or edited
    with pytest.raises(CacheMismatchError, match=r"tau=2\.5.*tau=3\.0 was requested.*Delete"):
        load_or_generate(params, progress=False)


def test_generator_version_mismatch_raises(monkeypatch):
    params = DarcyParams(resolution=9, n=2)
    load_or_generate(params, progress=False)
    path = params.cache_path()
    monkeypatch.setattr(DarcyParams, "version", 2)
    with pytest.raises(CacheMismatchError, match="generator_version=1"):
        base.read_cache(path, params)


def test_corrupt_arrays_raise():
    params = DarcyParams(resolution=9, n=2)
    load_or_generate(params, progress=False)
    with h5py.File(params.cache_path(), "r+") as f:
        f["y"][0, 0, 4, 4] = float("nan")
    with pytest.raises(CacheError, match="non-finite"):
        load_or_generate(params, progress=False)


def test_unreadable_file_raises_with_fix():
    params = DarcyParams(resolution=9, n=2)
    path = params.cache_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not hdf5 at all")
    with pytest.raises(CacheError, match="cannot be read as HDF5.*Delete"):
        load_or_generate(params, progress=False)


def test_leftover_temp_file_is_never_picked_up(_cache_in_tmp):
    params = DarcyParams(resolution=9, n=2)
    path = params.cache_path()
    path.parent.mkdir(parents=True)
    leftover = path.parent / f".{path.name}.abc123.tmp"  # what a killed writer leaves
    leftover.write_bytes(b"\x89HDF\r\n\x1a\n truncated")
    ds = load_or_generate(params, progress=False)
    assert len(ds) == 2 and path.exists()


def test_interrupted_write_leaves_no_file(monkeypatch, _cache_in_tmp):
    def fill_then_die(f, params, arrays):
        f.create_dataset("x", data=arrays["x"].numpy())
        raise KeyboardInterrupt  # killed between the two arrays

    monkeypatch.setattr(base, "_fill", fill_then_die)
    params = DarcyParams(resolution=9, n=2)
    with pytest.raises(KeyboardInterrupt):
        load_or_generate(params, progress=False)
    assert [p for p in _cache_in_tmp.iterdir() if p.suffix != ".lock"] == []  # the writers' lock file stays
    monkeypatch.undo()
    monkeypatch.setenv("LOWPREC_CACHE", str(_cache_in_tmp))
    assert len(load_or_generate(params, progress=False)) == 2


RACER = """
import json, sys, time
from lowprec.data import DarcyParams, load_or_generate
original = DarcyParams.generate
def slow(self, *a, **k):
    with open(sys.argv[3], "a") as log:
        log.write(json.dumps(self.n) + "\\n")
    time.sleep(1.0)  # long enough that the other process arrives while this one generates
    return original(self, *a, **k)
DarcyParams.generate = slow
ds = load_or_generate(DarcyParams(resolution=9, n=int(sys.argv[2])), sys.argv[1], progress=False)
print(len(ds))
"""


def race(tmp_path, *ns):
    """Run load_or_generate for each n in its own process, all at once; (lengths, n of each generation)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    log = tmp_path / "generated.jsonl"
    env = {**os.environ, "PYTHONPATH": str(Path(base.__file__).resolve().parents[2]), "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(tmp_path / "cache"), str(n), str(log)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for n in ns
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    generated = [int(line) for line in log.read_text().splitlines()] if log.exists() else []
    return [int(out) for out, _ in outs], generated


def test_concurrent_commands_neither_duplicate_work_nor_shrink_an_entry(tmp_path):
    lengths, generated = race(tmp_path, 12, 3, 12)
    assert lengths == [12, 3, 12]
    # Whoever came first, 12 samples were generated once (3 only if it came first), and the entry kept 12.
    assert generated.count(12) == 1 and generated in ([12], [3, 12])
    path = DarcyParams(resolution=9, n=1).cache_path(tmp_path / "cache")
    with h5py.File(path) as f:
        assert f.attrs["n"] == 12 and f["x"].shape[0] == 12
