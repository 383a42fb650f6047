"""Dict batches: a toy point-cloud data set and model train through Trainer; DictDataset's checks."""

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from lowprec.data import DictDataset
from lowprec.train import TrainConfig, Trainer, evaluate

TIMING = {"seconds", "samples_per_s"}


def point_clouds(n=32, points=48, seed=0) -> DictDataset:
    """Scattered points in the unit square with a feature a; target u = a sin(pi x) + y^2 at each point."""
    g = torch.Generator().manual_seed(seed)
    coords = torch.rand(n, 2, points, generator=g)
    a = 1 + torch.rand(n, 1, 1, generator=g).expand(n, 1, points).clone()
    u = a * torch.sin(math.pi * coords[:, :1]) + coords[:, 1:] ** 2
    return DictDataset({"a": a, "coords": coords, "y": u})


class PointMLP(nn.Module):
    """Per point: (a, x, y) -> u; takes its inputs by name, as a GINO takes (x, coords)."""

    def __init__(self, width=32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(3, width, 1), nn.GELU(), nn.Conv1d(width, width, 1), nn.GELU(), nn.Conv1d(width, 1, 1)
        )

    def forward(self, a, coords):
        return self.net(torch.cat([a, coords], dim=1))


def make(config, out_dir=None):
    torch.manual_seed(0)
    return Trainer(PointMLP(), point_clouds(), {"test": point_clouds(8, seed=1)}, config, out_dir)


def strip(history):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in history]


def test_a_point_cloud_model_trains_on_dict_batches():
    history = make(TrainConfig(epochs=30, batch_size=8, lr=1e-2, scheduler="none", progress=False)).fit()
    assert history[-1]["train_loss"] < 0.2 * history[0]["train_loss"]
    assert history[-1]["test_l2"] < 0.15
    assert "test_h1" not in history[-1]  # points: no grid, no derivatives


def test_dict_batch_resume_reproduces_an_uninterrupted_run_exactly(tmp_path):
    config = TrainConfig(epochs=4, batch_size=8, progress=False)
    full = make(config, tmp_path / "a")
    full.fit()
    first = make(config, tmp_path / "b")
    first.fit(max_epochs=2)
    second = make(config, tmp_path / "b").resume(tmp_path / "b")
    second.fit()
    assert strip(second.history) == strip(full.history)
    for p, q in zip(full.model.parameters(), second.model.parameters()):
        assert torch.equal(p, q)


def test_evaluate_reads_y_by_name_and_h1_needs_a_grid():
    data = point_clouds(8)
    model = PointMLP()
    manual = (
        (model(data.fields["a"], data.fields["coords"]) - data.y).flatten(1).norm(dim=1) / data.y.flatten(1).norm(dim=1)
    ).mean()
    scores = evaluate(model, data, batch_size=3)
    assert set(scores) == {"l2"} and scores["l2"] == pytest.approx(manual.item(), rel=1e-5)
    with pytest.raises(ValueError, match="loss 'h1' needs targets on a grid"):
        Trainer(model, data, config=TrainConfig(loss="h1", progress=False))


def test_dict_dataset_indexing_and_checks():
    data = point_clouds(10)
    assert data.inputs == ("a", "coords") and len(data) == 10
    sample = data[3]
    assert set(sample) == {"a", "coords", "y"} and sample["coords"].shape == (2, 48)
    batch = next(iter(DataLoader(data, batch_size=4)))  # torch's collate stacks dicts too
    assert torch.equal(batch["coords"], data.fields["coords"][:4])
    train, test = data.split(7)
    assert (len(train), len(test)) == (7, 3) and torch.equal(test.y, data.y[7:])
    assert torch.equal(data.subset([1, 4]).fields["a"], data.fields["a"][[1, 4]])
    with pytest.raises(ValueError, match="target under the name 'y'"):
        DictDataset({"x": torch.zeros(2, 1, 3), "u": torch.zeros(2, 1, 3)})
    with pytest.raises(ValueError, match="field 'coords' has shape .* same N"):
        DictDataset({"coords": torch.zeros(3, 2, 5), "y": torch.zeros(2, 1, 5)})
    with pytest.raises(ValueError, match="not a Python identifier"):
        DictDataset({"in-put": torch.zeros(2, 1, 5), "y": torch.zeros(2, 1, 5)})
    bad = torch.zeros(2, 1, 5)
    bad[1, 0, 2] = float("nan")
    with pytest.raises(ValueError, match="y contains 1 NaN values in sample 1"):
        DictDataset({"x": torch.zeros(2, 1, 5), "y": bad})


def test_forward_overflow_on_dict_batches_names_the_layer():
    from lowprec.precision import PrecisionOverflowError

    t = make(TrainConfig(epochs=1, batch_size=8, precision="amp", on_overflow="raise", progress=False))
    with torch.no_grad():
        t.model.net[0].weight.mul_(1e6)  # fp16 overflows in the first layer
    with pytest.raises(PrecisionOverflowError, match=r"forward pass produced inf/NaN in net\.0 \(Conv1d\)"):
        t.fit()


def test_quantization_aware_training_on_dict_batches():
    from lowprec.quant import calibrate, quantize_, quantizers

    torch.manual_seed(0)
    data = point_clouds()
    model = quantize_(PointMLP(), "w8a8")
    calibrate(model, data, n_batches=2, batch_size=8)  # named inputs, "y" left out
    assert all(bool(q.calibrated) for q in quantizers(model))
    scales = [q.log_scale.detach().clone() for q in quantizers(model)]
    trainer = Trainer(
        model,
        data,
        {"test": point_clouds(8, seed=1)},
        TrainConfig(epochs=3, batch_size=8, weight_decay=0.0, progress=False),
    )
    history = trainer.fit()
    assert all(math.isfinite(r["train_loss"]) and math.isfinite(r["test_l2"]) for r in history)
    assert any(not torch.equal(s, q.log_scale) for s, q in zip(scales, quantizers(model)))  # LSQ scales learned
