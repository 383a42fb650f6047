"""`lowprec data generate | info | plot`, through the top-level command as users run it."""

import h5py
import pytest
import torch

from lowprec.cli import main
from lowprec.data import load_dataset, load_trajectories


def run(capsys, *argv):
    code = main(["data", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_generate_info_plot_time_series(tmp_path, capsys):
    out = tmp_path / "ns.h5"
    code, text, _ = run(
        capsys,
        "generate",
        "navier_stokes",
        "--n",
        2,
        "--res",
        16,
        "--seed",
        3,
        "--t-final",
        4,
        "--dt",
        0.05,
        "--viscosity",
        1e-3,
        "--t-in",
        2,
        "--out",
        out,
        "--no-progress",
    )
    assert code == 0 and "u (2, 5, 16, 16)" in text and "default view x (2, 2, 16, 16), y (2, 2, 16, 16)" in text
    traj = load_trajectories(out)
    assert traj.u.shape == (2, 5, 16, 16) and traj.meta["params"]["seed"] == 3
    ds = load_dataset(out)  # the view stored with the file: x = w(1..2), y = w(3..4)
    assert torch.equal(ds.x, traj.u[:, 1:3]) and ds.grid == "periodic"
    code, text, _ = run(capsys, "info", out)
    assert code == 0 and "lowprec-trajectories" in text and "(2, 5, 16, 16)" in text and "viscosity: 0.001" in text
    assert "range [" in text
    png = tmp_path / "ns.png"
    assert run(capsys, "plot", out, "--index", 1, "--out", png)[0] == 0
    assert png.stat().st_size > 1000


def test_generate_pairs_and_pdebench_format(tmp_path, capsys):
    code, text, _ = run(
        capsys, "generate", "darcy", "--n", 3, "--res", 9, "--forcing", 2, "--out", tmp_path / "d.npz", "--no-progress"
    )
    assert code == 0 and "x (3, 1, 9, 9)" in text
    assert load_dataset(tmp_path / "d.npz").meta["params"]["forcing"] == 2.0
    code, _, _ = run(
        capsys,
        "generate",
        "burgers_pdebench",
        "--n",
        2,
        "--res",
        32,
        "--t-final",
        0.2,
        "--format",
        "pdebench",
        "--out",
        tmp_path / "b.hdf5",
        "--no-progress",
    )
    assert code == 0
    with h5py.File(tmp_path / "b.hdf5") as f:
        assert f["tensor"].shape == (2, 21, 32) and f["t-coordinate"].shape == (22,) and f.attrs["Nu"] == 0.001
    assert run(capsys, "plot", tmp_path / "b.hdf5", "--out", tmp_path / "b.png")[0] == 0
    assert run(capsys, "plot", tmp_path / "d.npz", "--index", 2, "--out", tmp_path / "d.png")[0] == 0


def test_bad_input_is_one_line_with_the_fix(tmp_path, capsys):
    code, _, err = run(capsys, "info", tmp_path / "missing.h5")
    assert code == 2 and "no data file at" in err
    code, _, err = run(capsys, "generate", "navier_stokes", "--n", 1, "--res", 16, "--t-final", 4, "--no-progress")
    assert code == 2 and "cannot cut t_in=10" in err and "--t-in" in err
    code, _, err = run(capsys, "generate", "burgers", "--n", 1, "--res", 16, "--record-dt", 0.3, "--no-progress")
    assert code == 2 and "t_final=1 must be a positive whole multiple of record_dt=0.3" in err
    with h5py.File(tmp_path / "odd.h5", "w") as f:
        f["inputs"] = [[1.0]]
    code, _, err = run(capsys, "plot", tmp_path / "odd.h5")
    assert code == 2 and "not a layout lowprec knows" in err
    with pytest.raises(SystemExit):  # argparse: unknown flag
        main(["data", "generate", "darcy", "--viscosity", "1"])
    assert "unrecognized arguments: --viscosity" in capsys.readouterr().err


def test_help_lists_every_problem_and_its_parameters(capsys):
    with pytest.raises(SystemExit):
        main(["data", "generate", "--help"])
    text = capsys.readouterr().out
    for name in ("darcy", "darcy_pdebench", "navier_stokes", "burgers", "burgers_pdebench", "diffusion_sorption"):
        assert name in text
    with pytest.raises(SystemExit):
        main(["data", "generate", "diffusion_sorption", "--help"])
    text = capsys.readouterr().out
    assert "--n-f" in text and "Freundlich exponent" in text and "--window-stride" in text
