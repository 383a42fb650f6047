"""``lowprec data plot`` draws what the file holds: few snapshots as lines, not a smooth image."""

import matplotlib
import torch

from lowprec.data.io import save_trajectories
from lowprec.data.timeseries import Trajectories

matplotlib.use("Agg")


def plotted_figure(tmp_path, monkeypatch, u, t):
    from matplotlib.figure import Figure

    from lowprec.cli import main

    path = save_trajectories(Trajectories(u, t, grid="periodic", meta={"problem": "test"}), tmp_path / "traj.h5")
    figures = []
    real = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: (figures.append(self), real(self, *a, **k))[1])
    png = tmp_path / "traj.png"
    assert main(["data", "plot", str(path), "--out", str(png)]) == 0
    assert png.stat().st_size > 1000
    return figures[0]


def test_two_snapshots_are_two_lines(tmp_path, monkeypatch):
    x = torch.linspace(0, 1, 33)[:-1]
    u = torch.stack([torch.sin(2 * torch.pi * x), torch.sin(2 * torch.pi * x) * 0.5])[None]  # (1, T=2, X=32)
    ax = plotted_figure(tmp_path, monkeypatch, u, [0.0, 1.0]).axes[0]
    assert len(ax.images) == 0 and len(ax.lines) == 2
    assert torch.allclose(torch.tensor(ax.lines[1].get_ydata()), u[0, 1])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["t = 0", "t = 1"]


def test_many_snapshots_are_a_space_time_image(tmp_path, monkeypatch):
    u = torch.randn(1, 20, 32)
    ax = plotted_figure(tmp_path, monkeypatch, u, torch.linspace(0, 1, 20)).axes[0]
    assert len(ax.images) == 1
