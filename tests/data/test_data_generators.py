"""Every registered generator: the contract `lowprec train` relies on."""

import pytest
import torch

from lowprec.data import GENERATORS, PROBLEMS, TRAJECTORIES, PDEDataset

SMALL = {
    "darcy": dict(resolution=9),
    "darcy_pdebench": dict(resolution=9),
    "navier_stokes": dict(resolution=16, t_final=11.0, dt=0.05),
    "burgers": dict(resolution=32),
    "burgers_pdebench": dict(resolution=32, t_final=0.11),
    "diffusion_sorption": dict(resolution=32, t_final=55.0),
    "shallow_water": dict(resolution=8, t_final=7200.0, dt=900.0),
}
PERIODIC = {"navier_stokes", "burgers", "burgers_pdebench"}
POINT_CLOUDS = {"bodies"}  # DictDatasets, tested in test_data_bodies.py


def test_registry_names():
    assert set(GENERATORS) == set(SMALL) | POINT_CLOUDS == set(PROBLEMS)
    assert set(TRAJECTORIES) == {"navier_stokes", "burgers", "burgers_pdebench", "diffusion_sorption", "shallow_water"}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_generator_contract(name, tmp_path):
    kw = dict(SMALL[name])
    resolution = kw.pop("resolution")
    # what config.generate_dataset calls
    ds = GENERATORS[name](resolution=resolution, n=3, seed=1, cache_dir=tmp_path, progress=False, **kw)
    assert isinstance(ds, PDEDataset) and len(ds) == 3
    assert ds.x.dtype == ds.y.dtype == torch.float32 and ds.x.shape[2:] == ds.y.shape[2:]
    sphere = name == "shallow_water"  # Gauss grid: resolution latitudes, twice as many longitudes
    assert ds.x.shape[2:] == ((resolution, 2 * resolution) if sphere else (resolution,) * (ds.x.ndim - 2))
    assert ds.grid == ("periodic" if name in PERIODIC else "nodes")
    assert ds.meta["problem"] == name and ds.meta["params"]["seed"] == 1
    assert ds.meta["source"].startswith(str(tmp_path))
    again = GENERATORS[name](resolution=resolution, n=2, seed=1, cache_dir=tmp_path, progress=False, **kw)
    assert torch.equal(again.x, ds.x[:2]) and torch.equal(again.y, ds.y[:2])  # read from the cache
    fresh = GENERATORS[name](resolution=resolution, n=2, seed=1, cache=False, progress=False, **kw)
    torch.testing.assert_close(fresh.y, ds.y[:2], atol=1e-6, rtol=1e-5)  # sample i depends on (seed, i)
    with pytest.raises(ValueError, match=rf"{name}: unknown parameter\(s\) 'bogus'. Its parameters are"):
        GENERATORS[name](resolution=resolution, n=1, seed=0, bogus=1, progress=False)
