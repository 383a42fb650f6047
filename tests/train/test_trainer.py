import logging
import types

import pytest
import torch

from lowprec._atomic import atomic_write
from lowprec.models import FNO
from lowprec.precision import PrecisionOverflowError
from lowprec.train import TrainConfig, Trainer, read_metrics

TIMING = {"seconds", "samples_per_s"}


def toy_data(n=24, s=16, seed=0):
    """Band-limited random inputs, a pointwise nonlinear operator as the target."""
    g = torch.Generator().manual_seed(seed)
    spectrum = torch.fft.rfft2(torch.randn(n, 1, s, s, generator=g), norm="forward")
    kept = torch.zeros_like(spectrum)
    kept[..., :3, :3], kept[..., -2:, :3] = spectrum[..., :3, :3], spectrum[..., -2:, :3]
    x = torch.fft.irfft2(kept, s=(s, s), norm="forward")
    return types.SimpleNamespace(x=x, y=x**2 + 0.5 * x)


def make(config, out_dir=None, seed=0):
    torch.manual_seed(seed)
    model = FNO((4, 4), hidden_channels=8, n_layers=2)
    return Trainer(
        model, toy_data(), {"test": toy_data(8, seed=1), "test_32": toy_data(8, 32, seed=2)}, config, out_dir
    )


def strip(history):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in history]


def test_schedule_switches_policy_at_the_right_epochs(tmp_path):
    t = make(TrainConfig(epochs=4, batch_size=8, precision="half:0.5,full:0.5", progress=False), tmp_path)
    history = t.fit()
    assert [r["policy"] for r in history] == ["half", "half", "full", "full"]
    assert [r["policy"] for r in read_metrics(tmp_path / "metrics.jsonl")] == ["half", "half", "full", "full"]
    assert {
        "train_loss",
        "test_l2",
        "test_h1",
        "test_32_l2",
        "activation_mib",
        "samples_per_s",
        "peak_memory_mib",
        "lr",
    } <= set(history[0])


def test_training_reduces_the_error():
    history = make(TrainConfig(epochs=12, batch_size=4, lr=5e-3, scheduler="none", progress=False)).fit()
    assert history[-1]["test_l2"] < 0.5 * history[0]["test_l2"]


def test_resume_reproduces_an_uninterrupted_run_exactly(tmp_path):
    config = TrainConfig(epochs=4, batch_size=8, precision="mixed:0.5,full:0.5", progress=False)
    straight = make(config, tmp_path / "a")
    straight.fit()
    interrupted = make(config, tmp_path / "b")
    interrupted.fit(max_epochs=2)
    resumed = make(config, tmp_path / "b", seed=123).resume(tmp_path / "b")  # different init, then loaded
    assert resumed.epoch == 2
    resumed.fit()
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert strip(straight.history) == strip(resumed.history)
    assert strip(read_metrics(tmp_path / "b" / "metrics.jsonl")) == strip(straight.history)


def test_resume_with_another_configuration_is_refused(tmp_path):
    make(TrainConfig(epochs=2, batch_size=8, progress=False), tmp_path).fit(max_epochs=1)
    other = make(TrainConfig(epochs=2, batch_size=4, progress=False), tmp_path)
    with pytest.raises(ValueError, match="different configuration.*batch_size: 8 -> 4"):
        other.resume(tmp_path)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        other.resume(tmp_path / "missing")


def test_checkpoint_writes_are_atomic(tmp_path):
    path = tmp_path / "checkpoint.pt"
    atomic_write(path, lambda f: f.write(b"old"))

    def broken(f):
        f.write(b"half of a new file")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, broken)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def overflowing(trainer):
    with torch.no_grad():
        trainer.model.lifting.fc1.weight.mul_(1e6)  # fp16 overflows in the lifting layer
    return trainer


def test_forward_overflow_stops_with_the_layer_named():
    t = overflowing(make(TrainConfig(epochs=1, batch_size=8, precision="amp", on_overflow="raise", progress=False)))
    before = [p.detach().clone() for p in t.model.parameters()]
    with pytest.raises(PrecisionOverflowError, match=r"epoch 1 step 1: under policy 'amp'.*forward pass.*lifting"):
        t.fit()
    assert all(torch.equal(a, p) for a, p in zip(before, t.model.parameters()))  # never trained through


def test_repeated_overflow_under_skip_stops_too():
    t = overflowing(make(TrainConfig(epochs=1, batch_size=4, precision="amp", max_skipped_steps=2, progress=False)))
    with pytest.raises(PrecisionOverflowError, match="3 steps in a row overflowed"):
        t.fit()


def test_backward_overflow_skips_the_step_and_lowers_the_scale(caplog):
    caplog.set_level(logging.WARNING, logger="lowprec")
    t = make(TrainConfig(epochs=1, batch_size=2, precision="amp", init_loss_scale=2.0**40, progress=False))
    history = t.fit()
    assert history[0]["skipped_steps"] > 0
    assert history[0]["loss_scale"] < 2.0**40
    assert all(torch.isfinite(p).all() for p in t.model.parameters())
    assert any("backward pass produced inf/NaN gradients in" in r.getMessage() for r in caplog.records)


def test_fp16_policies_save_activation_memory():
    full = make(TrainConfig(epochs=1, batch_size=8, progress=False)).fit()[0]["activation_mib"]
    amp = make(TrainConfig(epochs=1, batch_size=8, precision="amp", progress=False)).fit()[0]["activation_mib"]
    assert amp < 0.85 * full


def test_bad_config_values_raise():
    with pytest.raises(ValueError, match="unknown optimizer"):
        TrainConfig(optimizer="sgdd")
    with pytest.raises(ValueError, match="unknown loss"):
        TrainConfig(loss="l3")
    with pytest.raises(ValueError, match="unknown precision policy"):
        make(TrainConfig(precision="quarter", progress=False))


def test_cosine_horizon_is_set_apart_from_the_epochs():
    # Two epochs of a four-epoch cosine schedule end half-way down it: lr * (1 + cos(pi / 2)) / 2.
    part = make(TrainConfig(epochs=2, batch_size=8, lr=1e-3, scheduler_t_max=4, progress=False))
    part.fit()
    assert part.optimizer.param_groups[0]["lr"] == pytest.approx(0.5e-3)
    whole = make(TrainConfig(epochs=2, batch_size=8, lr=1e-3, progress=False))  # default: the run's epochs
    whole.fit()
    assert whole.optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="scheduler_t_max=0"):
        TrainConfig(scheduler_t_max=0)
