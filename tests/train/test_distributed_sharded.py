"""bf16 gradient communication and FSDP2 training in the Trainer: two gloo processes on the CPU.

The two-rank run is spawned once per module and plays every scenario; the tests compare what the ranks
saved with each other, with independent per-rank gradients, and with one process here.
"""

import json
import logging
import math
import os
import types

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lowprec.models import FNO
from lowprec.train import TrainConfig, Trainer
from lowprec.train.checkpoint import load_checkpoint
from lowprec.train.distributed import Ranks

N_TRAIN, BATCH = 16, 2
U_BF16 = 2.0**-8  # unit roundoff of bfloat16 (8 significant bits)


def toy_data(n, s=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, s, s, generator=g)
    return types.SimpleNamespace(x=x, y=x**2 + 0.5 * x, grid="periodic")


def tiny_fno():
    torch.manual_seed(0)
    return FNO((4, 4), hidden_channels=8, n_layers=2)


def make(config, out_dir=None):
    return Trainer(tiny_fno(), toy_data(N_TRAIN), {"test": toy_data(7, seed=1)}, config, out_dir)


def config(**kw):
    return TrainConfig(**{"epochs": 3, "batch_size": BATCH, "scheduler": "none", "lr": 1e-2, "progress": False, **kw})


class _InfGradient(torch.autograd.Function):
    """Identity forward; an inf gradient backward (a gradient overflow on one rank, forward finite)."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * float("inf")


def _gradients(rank, world, out):
    """Per-rank batch gradients: local (no communication), and averaged by DDP/FSDP2 with and without bf16."""
    x = torch.randn(BATCH, 1, 16, 16, generator=torch.Generator().manual_seed(10 + rank))
    ranks = Ranks(rank, world)

    def grads(parallel, compression):
        model = tiny_fno()
        wrapped = model if parallel is None else ranks.wrap(model, parallel, compression)
        wrapped(x).pow(2).mean().backward()
        full = (lambda g: g.full_tensor()) if parallel == "fsdp" else (lambda g: g)
        return {n: full(p.grad).clone() for n, p in model.named_parameters()}

    torch.save(
        {
            "local": grads(None, "none"),
            **{f"{p}_{c}": grads(p, c) for p in ("ddp", "fsdp") for c in ("none", "bf16")},
        },
        os.path.join(out, f"grads_rank{rank}.pt"),
    )


def _training(rank, world, out):
    # DDP straight to 3 epochs; FSDP2 for 2 epochs, then resumed by a new FSDP2 trainer to 3.
    make(config(), os.path.join(out, "ddp")).fit()
    fsdp = make(config(parallel="fsdp"), os.path.join(out, "fsdp"))
    fsdp.fit(max_epochs=2)
    fsdp.save(os.path.join(out, "saved_by_every_rank.pt"))
    make(config(parallel="fsdp"), os.path.join(out, "fsdp_resumed")).resume(os.path.join(out, "fsdp")).fit()
    # Under a scaled fp16 policy with recomputed blocks.
    for parallel in ("ddp", "fsdp"):
        model = FNO((4, 4), hidden_channels=8, n_layers=2, recompute=True)
        model.load_state_dict(tiny_fno().state_dict())
        cfg = config(epochs=1, precision="mixed", parallel=parallel)
        Trainer(
            model, toy_data(N_TRAIN), {"test": toy_data(7, seed=1)}, cfg, os.path.join(out, f"{parallel}_mixed")
        ).fit()
    # bf16 gradients, under DDP and FSDP2.
    make(config(grad_compression="bf16"), os.path.join(out, "ddp_bf16")).fit()
    make(config(parallel="fsdp", grad_compression="bf16"), os.path.join(out, "fsdp_bf16")).fit()


def _overflows(rank, world, out):
    """Under FSDP2, rank 1 alone overflows: in its forward pass at step 1, in its backward pass at step 3."""
    records = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logging.getLogger("lowprec").addHandler(handler)
    trainer = make(config(epochs=1, parallel="fsdp", on_overflow="skip"), os.path.join(out, f"overflow_{rank}"))
    if rank == 1:
        loss_fn, calls = trainer.loss_fn, []

        def sometimes_bad(out_, y):
            calls.append(1)
            if len(calls) == 1:
                return loss_fn(out_, y) * float("inf")
            return loss_fn(_InfGradient.apply(out_) if len(calls) == 3 else out_, y)

        trainer.loss_fn = sometimes_bad
    history = trainer.fit()
    torch.save({"history": history, "log": records}, os.path.join(out, f"overflow_rank{rank}.pt"))


def _scenarios(rank: int, world: int, init: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world)
    try:
        _gradients(rank, world, out)
        _training(rank, world, out)
        _overflows(rank, world, out)
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("sharded")
    mp.spawn(_scenarios, args=(2, str(out / "init"), str(out)), nprocs=2, join=True)
    return out


def weights(run_dir, name="checkpoint.pt"):
    return torch.load(run_dir / name, weights_only=True)


def assert_weights_close(a, b, rtol=1e-5, atol=1e-6):
    assert a.keys() == b.keys()
    for name, want in b.items():
        torch.testing.assert_close(a[name], want, rtol=rtol, atol=atol, msg=name)


# -- bf16 gradient communication -----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_bf16_gradients_equal_the_fp32_average_to_bf16_rounding(two_ranks, parallel):
    g0, g1 = (torch.load(two_ranks / f"grads_rank{r}.pt") for r in range(2))
    for name, local0 in g0["local"].items():
        local1 = g1["local"][name]
        mean = (local0 + local1) / 2
        exact, compressed = g0[f"{parallel}_none"][name], g0[f"{parallel}_bf16"][name]
        # Both ranks end with the same averaged gradient.
        assert torch.equal(compressed, g1[f"{parallel}_bf16"][name]), name
        torch.testing.assert_close(exact, mean, rtol=1e-6, atol=1e-9, msg=name)
        # Each value went over the wire in bf16: it is a bf16 number, within two roundings of the mean
        # (each rank's half rounded, then their sum): |error| <= 2u (|g0| + |g1|) / 2.
        assert torch.equal(compressed.bfloat16().float(), compressed), name
        bound = 2 * U_BF16 * (local0.abs() + local1.abs()) / 2 + 1e-30
        assert bool(((compressed - mean).abs() <= bound).all()), name
    got = torch.cat([g0[f"{parallel}_bf16"][n].flatten() for n in g0["local"]])
    ref = torch.cat([((g0["local"][n] + g1["local"][n]) / 2).flatten() for n in g0["local"]])
    relative = ((got - ref).norm() / ref.norm()).item()
    assert 2.0**-14 < relative < U_BF16, relative  # compressed (not exact), to about bf16 precision


@pytest.mark.slow
def test_bf16_compression_is_recorded_and_trains_like_fp32(two_ranks):
    for parallel in ("ddp", "fsdp"):
        state = weights(two_ranks / f"{parallel}_bf16")
        assert state["config"]["grad_compression"] == "bf16" and state["config"]["parallel"] == parallel
        # 12 Adam steps on bf16-rounded gradients stay within a percent of the fp32 run's weights.
        base = weights(two_ranks / "ddp")["model"]
        for name, want in base.items():
            torch.testing.assert_close(state["model"][name], want, rtol=0.02, atol=2e-3, msg=name)
    assert weights(two_ranks / "ddp")["config"]["grad_compression"] == "none"


# -- FSDP2 in the Trainer ------------------------------------------------------------------------


@pytest.mark.slow
def test_fsdp_training_equals_ddp_and_writes_whole_checkpoints(two_ranks):
    ddp, fsdp = weights(two_ranks / "ddp", "checkpoint.1.pt"), weights(two_ranks / "fsdp")
    assert ddp["epoch"] == fsdp["epoch"] == 2 and fsdp["config"]["parallel"] == "fsdp"
    # Whole plain tensors (no DTensors), the same names and shapes as DDP's, loaded weights-only above.
    assert all(type(t) is torch.Tensor for t in fsdp["model"].values())
    assert_weights_close(fsdp["model"], ddp["model"])
    # The optimizer state is in the one-process format: the same parameter numbers and Adam moments.
    assert fsdp["optimizer"]["param_groups"][0]["params"] == ddp["optimizer"]["param_groups"][0]["params"]
    for i, want in ddp["optimizer"]["state"].items():
        for key in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(fsdp["optimizer"]["state"][i][key], want[key], rtol=1e-4, atol=1e-9)
    # Evaluation: the same test errors as DDP's (which are the one-process ones).
    for a, b in zip(fsdp["history"], ddp["history"]):
        assert a["test_l2"] == pytest.approx(b["test_l2"], rel=1e-5)
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)


@pytest.mark.slow
def test_fsdp_equals_ddp_under_loss_scaled_fp16_with_recomputation(two_ranks):
    ddp, fsdp = weights(two_ranks / "ddp_mixed"), weights(two_ranks / "fsdp_mixed")
    assert fsdp["scaler"] == ddp["scaler"] and fsdp["scaler"]["enabled"]
    assert_weights_close(fsdp["model"], ddp["model"])
    assert fsdp["history"][0]["test_l2"] == pytest.approx(ddp["history"][0]["test_l2"], rel=1e-5)


@pytest.mark.slow
def test_an_fsdp_run_resumes_sharded_and_in_one_process(two_ranks, tmp_path):
    straight = weights(two_ranks / "ddp")
    resumed = weights(two_ranks / "fsdp_resumed")
    assert resumed["epoch"] == 3 and [r["epoch"] for r in resumed["history"]] == [1, 2, 3]
    assert_weights_close(resumed["model"], straight["model"])
    # The sharded checkpoint loads into one process (the global batch changes, so compare states only).
    single = make(config(parallel="fsdp"), tmp_path / "one").resume(two_ranks / "fsdp")
    assert single.epoch == 2
    assert_weights_close(single.model.state_dict(), load_checkpoint(two_ranks / "fsdp" / "checkpoint.pt")["model"])
    # Trainer.save, called by both ranks, writes the same whole state once.
    saved = weights(two_ranks, "saved_by_every_rank.pt")
    assert saved["epoch"] == 2
    assert_weights_close(saved["model"], single.model.state_dict(), rtol=0, atol=0)


@pytest.mark.slow
def test_an_overflow_on_one_rank_under_fsdp_skips_the_step_on_every_rank(two_ranks):
    ranks = [torch.load(two_ranks / f"overflow_rank{r}.pt") for r in range(2)]
    for r in ranks:
        assert r["history"][0]["skipped_steps"] == 2
    log0, log1 = "\n".join(ranks[0]["log"]), "\n".join(ranks[1]["log"])
    assert "epoch 1 step 1" in log1 and "a layer not searched" in log1 and "parallel 'ddp'" in log1
    # Rank 1's inf/NaN gradients reach every rank's shard through the reduce-scatter, so rank 0 sees a
    # backward overflow at both steps; every rank skips both.
    assert "epoch 1 step 1" in log0 and "epoch 1 step 3" in log0 and "backward pass produced inf/NaN" in log0
    state = weights(two_ranks / "overflow_0")
    assert all(bool(torch.isfinite(t).all()) for t in state["model"].values())


def test_unknown_parallel_and_compression_are_refused():
    with pytest.raises(ValueError, match=r"parallel='zero'; choose 'ddp' or 'fsdp'"):
        TrainConfig(parallel="zero")
    with pytest.raises(ValueError, match=r"grad_compression='fp8'; choose 'none' or 'bf16'"):
        TrainConfig(grad_compression="fp8")


@pytest.mark.slow
def test_lowprec_train_nproc_2_with_fsdp_and_bf16_gradients(tmp_path):
    import subprocess
    import sys

    import yaml

    out = tmp_path / "run"
    flags = "--resolution 17 --n-train 8 --n-test 4 --batch-size 2 --epochs 2 --hidden-channels 8 --n-modes 4"
    cmd = [sys.executable, "-m", "lowprec", "train", "--nproc", "2", *flags.split(), "--parallel", "fsdp"]
    cmd += [
        "--grad-compression",
        "bf16",
        "--out-dir",
        str(out),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--no-progress",
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    saved = yaml.safe_load((out / "config.yaml").read_text())["train"]
    assert saved["parallel"] == "fsdp" and saved["grad_compression"] == "bf16"
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["world_size"] for m in metrics] == [2, 2]
    assert all(math.isfinite(m["test_17_l2"]) for m in metrics)
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["epoch"] == 2 and all(type(t) is torch.Tensor for t in state["model"].values())


def test_a_checkpoint_from_before_the_settings_resumes_with_their_defaults(tmp_path):
    trainer = make(config(epochs=1))
    trainer.fit()
    state = trainer.engine.state_dict()  # the whole checkpoint: the task's state and the position
    for key in ("parallel", "grad_compression"):
        del state["config"][key]
    torch.save(state, tmp_path / "old.pt")
    assert make(config(epochs=1)).resume(tmp_path / "old.pt").epoch == 1
    with pytest.raises(ValueError, match=r"grad_compression: 'none' -> 'bf16'"):
        make(config(epochs=1, grad_compression="bf16")).resume(tmp_path / "old.pt")
