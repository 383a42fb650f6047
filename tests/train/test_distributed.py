"""Data-parallel training: two gloo processes on the CPU against one process, and the errors around it.

The two-rank run is spawned once per module (torch.multiprocessing, a file rendezvous) and plays several
scenarios; the tests compare what each rank saved with what one process computes here.
"""

import os
import types

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lowprec import _atomic as atomic_module
from lowprec.models import FNO
from lowprec.precision import get_policy
from lowprec.train import TrainConfig, Trainer
from lowprec.train import checkpoint as checkpoint_module
from lowprec.train.distributed import (
    Ranks,
    fully_shard_model,
    init_from_env,
    without_flags,
)

N_TRAIN, BATCH = 16, 2


def toy_data(n, s=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, s, s, generator=g)
    return types.SimpleNamespace(x=x, y=x**2 + 0.5 * x, grid="periodic")


def make(config, out_dir=None):
    torch.manual_seed(0)
    model = FNO((4, 4), hidden_channels=8, n_layers=2)
    return Trainer(model, toy_data(N_TRAIN), {"test": toy_data(7, seed=1)}, config, out_dir)


LARGE_KINDS = [
    ("tfno", {"n_modes": (4, 4), "factorization": "tucker", "rank": 0.5}, (2, 1, 16, 16)),
    ("fno3d", {"n_modes": (4, 4, 4)}, (2, 1, 8, 8, 8)),
]


def tiny_fno():
    torch.manual_seed(0)
    return FNO((4, 4), hidden_channels=8, n_layers=2)


def adam_steps(model, rank, world, batch, steps=3):
    """``steps`` Adam steps on this rank's share (every ``world``-th sample) of consecutive global batches."""
    data = toy_data(steps * world * batch)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for k in range(steps):
        idx = torch.arange(k * world * batch, (k + 1) * world * batch)[rank::world]
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(data.x[idx]), data.y[idx]).backward()
        optimizer.step()


def config(batch_size, **kw):
    return TrainConfig(
        **{"epochs": 3, "batch_size": batch_size, "scheduler": "none", "lr": 1e-2, "progress": False, **kw}
    )


# A policy that scales the loss, in fp32, so that a skipped step visibly lowers the scale.
SCALED = get_policy("full").replace(name="full_scaled", loss_scaling=True)


def _scenarios(rank: int, world: int, init: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world)
    writes = []
    original = atomic_module.atomic_write

    def logged(path, write=None):
        writes.append(str(path))
        return original(path, write)

    # Checkpoints bind the name at import, metrics look it up at each write: patch both.
    checkpoint_module.atomic_write = atomic_module.atomic_write = logged
    try:
        # 1. per-rank batch BATCH on two ranks, two of three epochs written to out/run.
        trainer = make(config(BATCH), os.path.join(out, "run"))
        trainer.fit(max_epochs=2)
        torch.save(
            {"model": trainer.model.state_dict(), "history": trainer.history, "writes": writes},
            os.path.join(out, f"ddp_rank{rank}.pt"),
        )
        # 2. an overflow on rank 1 alone, at its first step.
        trainer = make(config(BATCH, epochs=1, precision=SCALED, on_overflow="skip"))
        if rank == 1:
            unscale = trainer.scaler.unscale_
            calls = []

            def unscale_once_bad(model):
                calls.append(1)
                bad = unscale(model)
                return bad or (["blocks.0.spectral.weight"] if len(calls) == 1 else [])

            trainer.scaler.unscale_ = unscale_once_bad
        trainer.fit()
        torch.save(
            {"model": trainer.model.state_dict(), "history": trainer.history, "scale": trainer.scaler.scale_value},
            os.path.join(out, f"overflow_rank{rank}.pt"),
        )
        # 3. FSDP2: three Adam steps, per-rank batch BATCH, the whole parameters gathered afterwards.
        model = fully_shard_model(tiny_fno())
        sharded = {n: p.to_local().numel() for n, p in model.named_parameters()}
        adam_steps(model, rank, world, BATCH)
        torch.save(
            {"model": {n: p.full_tensor() for n, p in model.named_parameters()}, "sharded": sharded},
            os.path.join(out, f"fsdp_rank{rank}.pt"),
        )
        # 4. FSDP2 on a Tucker TFNO and a 3D FNO: the gathered gradients against an unsharded replica.
        errors = {}
        for name, kw, shape in LARGE_KINDS:
            torch.manual_seed(0)
            model = FNO(hidden_channels=8, n_layers=2, **kw)
            replica = FNO(hidden_channels=8, n_layers=2, **kw)
            replica.load_state_dict(model.state_dict())
            fully_shard_model(model)
            x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))  # the same on both ranks
            model(x).pow(2).mean().backward()
            replica(x).pow(2).mean().backward()
            grads = {n: p.grad.full_tensor() for n, p in model.named_parameters()}
            errors[name] = max((grads[n] - p.grad).abs().max().item() for n, p in replica.named_parameters())
        torch.save(errors, os.path.join(out, f"fsdp_kinds_rank{rank}.pt"))
    finally:
        checkpoint_module.atomic_write = atomic_module.atomic_write = original
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(_scenarios, args=(2, str(out / "init"), str(out)), nprocs=2, join=True)
    return (
        out,
        [torch.load(out / f"ddp_rank{r}.pt", weights_only=False) for r in range(2)],
        [torch.load(out / f"overflow_rank{r}.pt", weights_only=False) for r in range(2)],
    )


def fsdp_results(out):
    return [torch.load(out / f"fsdp_rank{r}.pt", weights_only=False) for r in range(2)]


def test_two_ranks_with_batch_b_equal_one_process_with_batch_2b(two_ranks):
    _, ranks, _ = two_ranks
    single = make(config(2 * BATCH))
    single.fit(max_epochs=2)
    for name, want in single.model.state_dict().items():
        for r in ranks:
            torch.testing.assert_close(r["model"][name], want, rtol=1e-5, atol=1e-6, msg=name)
    for got, want in zip(ranks[0]["history"], single.history):
        assert got["world_size"] == 2 and want["world_size"] == 1
        # Training loss and test errors are reduced over the ranks: the means of all samples.
        for key in ("train_loss", "test_l2", "test_h1"):
            assert got[key] == pytest.approx(want[key], rel=1e-5), key


def test_only_rank_zero_writes_and_leaves_whole_files(two_ranks):
    out, ranks, _ = two_ranks
    assert ranks[1]["writes"] == []
    # Two epochs: each writes the newest checkpoint, the checkpoints' manifest and the metrics.
    assert sorted(os.path.basename(p) for p in ranks[0]["writes"]) == [
        "checkpoint.pt",
        "checkpoint.pt",
        "checkpoints.json",
        "checkpoints.json",
        "metrics.jsonl",
        "metrics.jsonl",
    ]
    # No temporary files left; the first epoch's checkpoint was rotated to checkpoint.1.pt.
    assert sorted(os.listdir(out / "run")) == ["checkpoint.1.pt", "checkpoint.pt", "checkpoints.json", "metrics.jsonl"]
    assert len((out / "run" / "metrics.jsonl").read_text().splitlines()) == 2


def test_an_overflow_on_one_rank_skips_the_step_on_every_rank(two_ranks):
    _, _, ranks = two_ranks
    steps = N_TRAIN // (2 * BATCH)
    for r in ranks:
        assert r["history"][0]["skipped_steps"] == 1
        assert r["scale"] == TrainConfig().init_loss_scale / 2
    for name, a in ranks[0]["model"].items():
        assert torch.equal(a, ranks[1]["model"][name]), name
    # The skipped step is the first: the same as one process that skips its first step.
    single = make(config(2 * BATCH, epochs=1, precision=SCALED, on_overflow="skip"))
    unscale, calls = single.scaler.unscale_, []
    single.scaler.unscale_ = lambda m: calls.append(1) or unscale(m) or (["x.weight"] if len(calls) == 1 else [])
    single.fit()
    assert len(calls) == steps
    for name, want in single.model.state_dict().items():
        torch.testing.assert_close(ranks[0]["model"][name], want, rtol=1e-5, atol=1e-6, msg=name)


def test_a_checkpoint_from_two_ranks_resumes_in_one_process(two_ranks, caplog_lowprec):
    out, _, _ = two_ranks
    resumed = make(config(BATCH), out / "resume").resume(out / "run")
    assert "trained on 2 process(es), on 1" in caplog_lowprec.text
    assert resumed.epoch == 2
    history = resumed.fit()
    assert [r["world_size"] for r in history] == [2, 2, 1]


def test_fsdp2_on_two_ranks_equals_one_process_with_the_global_batch(two_ranks):
    out, _, _ = two_ranks
    ranks = fsdp_results(out)
    single = tiny_fno()
    adam_steps(single, 0, 1, 2 * BATCH)
    whole = dict(single.named_parameters())
    for name, want in whole.items():
        for r in ranks:
            torch.testing.assert_close(r["model"][name], want.detach(), rtol=1e-5, atol=1e-6, msg=name)
    # Each rank holds about half of every parameter (dim 0 split in two, the odd one rounded up).
    for name, p in whole.items():
        assert ranks[0]["sharded"][name] + ranks[1]["sharded"][name] == p.numel(), name
        assert ranks[0]["sharded"][name] <= -(-p.shape[0] // 2) * p[0].numel(), name


def test_fsdp2_shards_a_tucker_tfno_and_a_3d_fno(two_ranks):
    out, _, _ = two_ranks
    for rank in range(2):
        errors = torch.load(out / f"fsdp_kinds_rank{rank}.pt")
        assert set(errors) == {"tfno", "fno3d"}
        assert all(e <= 1e-6 for e in errors.values()), errors


# -- without other processes ---------------------------------------------------------------------


def test_the_ranks_batches_interleave_into_the_single_process_batches():
    one = Ranks().batches(N_TRAIN, 2 * BATCH, seed=3, epoch=5)
    r0, r1 = (Ranks(r, 2).batches(N_TRAIN, BATCH, seed=3, epoch=5) for r in range(2))
    assert len(one) == len(r0) == len(r1)
    for whole, a, b in zip(one, r0, r1):
        assert sorted(whole.tolist()) == sorted(a.tolist() + b.tolist())
    # One process draws the permutation the trainer always drew (seed * 100_003 + epoch).
    expected = torch.randperm(N_TRAIN, generator=torch.Generator().manual_seed(3 * 100_003 + 5))
    assert torch.equal(torch.cat(one), expected)


def test_a_world_size_that_does_not_divide_the_data_is_refused():
    with pytest.raises(ValueError, match="15 training samples cannot be shared evenly by 2 processes.*14 or 16"):
        Ranks(1, 2).check_dataset(15)
    Ranks(1, 3).check_dataset(15)


def test_a_world_without_a_rendezvous_is_a_clear_error(monkeypatch):
    for var in ("MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ValueError, match="MASTER_ADDR, MASTER_PORT .*torchrun"):
        init_from_env("cpu")
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert init_from_env("cpu") == Ranks()


def test_the_launcher_strips_its_own_flags():
    argv = ["train", "--nproc", "2", "--epochs", "3", "--max-restarts=1", "--out-dir", "x"]
    assert without_flags(argv, ("--nproc", "--max-restarts")) == ["train", "--epochs", "3", "--out-dir", "x"]


def test_the_cli_names_a_missing_rendezvous(monkeypatch, capsys, tmp_path):
    from lowprec.cli import main

    for var in ("MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert main(["train", "--out-dir", str(tmp_path / "run"), "--no-progress"]) == 2
    assert "rendezvous" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# -- torchrun's elastic agent: a worker killed mid-run -------------------------------------------


def _lowprec(out_dir, cache, *extra):
    import subprocess
    import sys

    cmd = [
        sys.executable,
        "-m",
        "lowprec",
        "train",
        "--nproc",
        "2",
        "--resolution",
        "17",
        "--n-train",
        "16",
        "--n-test",
        "4",
        "--batch-size",
        "2",
        "--epochs",
        "12",
        "--hidden-channels",
        "8",
        "--n-modes",
        "4",
        "--n-layers",
        "2",
        "--scheduler",
        "none",
        "--out-dir",
        str(out_dir),
        "--cache-dir",
        str(cache),
        "--no-progress",
        *extra,
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _children(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="finds the workers through Linux's /proc")
def test_a_killed_worker_restarts_from_the_checkpoint_and_ends_with_the_same_weights(tmp_path):
    import signal
    import time

    straight = _lowprec(tmp_path / "straight", tmp_path / "cache")
    log = straight.communicate(timeout=300)[0]
    assert straight.returncode == 0, log
    job = _lowprec(tmp_path / "killed", tmp_path / "cache", "--max-restarts", "1")
    metrics, deadline = tmp_path / "killed" / "metrics.jsonl", time.monotonic() + 240
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 3):
        assert job.poll() is None and time.monotonic() < deadline, job.communicate()[0]
        time.sleep(0.05)
    workers = _children(job.pid)
    assert len(workers) == 2
    os.kill(workers[1], signal.SIGKILL)
    log = job.communicate(timeout=300)[0]
    assert job.returncode == 0, log
    assert "resumed" in log, log  # the run was still going when the worker died, and resumed
    a = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=False)
    assert a["epoch"] == b["epoch"] == 12
    for name, want in a["model"].items():
        assert torch.equal(b["model"][name], want), name


def test_one_gpu_index_for_several_processes_is_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    for var in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.setenv(var, "0" if var == "RANK" else "x")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(ValueError, match="all 2 processes on one GPU"):
        init_from_env("cuda:0")


def test_nproc_that_does_not_divide_n_train_is_refused_before_any_process_starts(capsys, tmp_path):
    from lowprec.cli import main

    assert main(["train", "--nproc", "2", "--n-train", "15", "--out-dir", str(tmp_path / "run")]) == 2
    assert "15 training samples cannot be shared evenly by 2 processes" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="NCCL data parallelism needs 2 CUDA devices")
def test_nccl_ddp_on_two_gpus(tmp_path):
    job = _lowprec(tmp_path / "gpu", tmp_path / "cache", "--device", "cuda")
    log = job.communicate(timeout=600)[0]
    assert job.returncode == 0, log
    metrics = [line for line in (tmp_path / "gpu" / "metrics.jsonl").read_text().splitlines() if line]
    assert len(metrics) == 12 and all('"world_size": 2' in line for line in metrics)
