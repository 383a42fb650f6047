"""One engine for operators and PINNs: callbacks and factories instead of patching torch, and exact
resume of a PINN run (the operator trainer's resume is tested in test_trainer.py / test_checkpoint.py)."""

import dataclasses
import json

import pytest
import torch

from lowprec.models import FNO
from lowprec.physics import Advection, Burgers, PhysicsTrainConfig, Regression, train
from lowprec.train import TrainConfig, Trainer
from lowprec.train.checkpoint import CheckpointError
from lowprec.train.engine import StepEvent, StopTraining


class Data:
    """A periodic toy operator on 8x8 grids."""

    def __init__(self, n=16):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 1, 8, 8, generator=g)
        self.y = torch.roll(self.x, 1, -1) + 0.1 * self.x**2
        self.grid = "periodic"


def fno():
    torch.manual_seed(0)
    return FNO(n_modes=(4, 4), in_channels=1, out_channels=1, hidden_channels=8, n_layers=2)


def small_burgers():
    return Burgers(n_domain=128, n_boundary=16, n_initial=32, nx_ref=32, nt_ref=10)


def _same_result(a, b):
    assert [dataclasses.replace(r, ms=0.0) for r in a.history] == [dataclasses.replace(r, ms=0.0) for r in b.history]
    assert a.evals == b.evals and a.final == b.final and a.skipped_steps == b.skipped_steps
    for p, q in zip(a.master.parameters(), b.master.parameters(), strict=True):
        assert torch.equal(p, q)


# -- hooks -----------------------------------------------------------------------------------------


def test_operator_callbacks_see_every_step_with_the_optimizer_and_the_loss():
    events: list[StepEvent] = []
    config = TrainConfig(epochs=2, batch_size=4, scheduler="none", progress=False)
    Trainer(fno(), Data(), config=config, callbacks=[events.append]).fit()
    assert [e.step for e in events] == list(range(1, 9)) and [e.round for e in events] == [0] * 4 + [1] * 4
    assert all(e.loss > 0 for e in events)
    assert all(e.optimizer.state for e in events)  # Adam's moments exist: the step happened before the callback


def test_pinn_callbacks_see_every_step_and_its_record():
    seen = []
    r = train(
        Regression(), "mixed", PhysicsTrainConfig(steps=12, eval_every=5, measure_memory=False), callbacks=[seen.append]
    )
    assert [e.step for e in seen] == list(range(1, 13)) and [e.round for e in seen] == [0] * 5 + [1] * 5 + [2] * 2
    assert [e.record for e in seen] == r.history
    assert seen[0].model is r.master and seen[0].optimizer is r.optimizer


def test_optimizer_factory_replaces_adam_in_both_loops():
    built = []

    def sgd(groups, lr, eps):
        built.append(lr)
        return torch.optim.SGD(groups, lr=lr)

    config = TrainConfig(epochs=1, batch_size=8, lr=0.01, progress=False)
    trainer = Trainer(fno(), Data(), config=config, optimizer_factory=sgd)
    r = train(Regression(), "fp32", PhysicsTrainConfig(steps=3, lr=0.02, measure_memory=False), optimizer_factory=sgd)
    assert isinstance(trainer.optimizer, torch.optim.SGD) and isinstance(r.optimizer, torch.optim.SGD)
    assert built == [0.01, 0.02]


def test_a_callback_can_stop_a_run_early():
    def stop_at_7(event):
        if event.step == 7:
            raise StopTraining

    r = train(
        Regression(), "fp32", PhysicsTrainConfig(steps=20, eval_every=5, measure_memory=False), callbacks=[stop_at_7]
    )
    assert r.steps_done == 7 and r.final["step"] == 7


# -- PINN checkpoints and exact resume -------------------------------------------------------------


class Killed(Exception):
    pass


def _kill_at(step):
    def callback(event):
        if event.step == step:
            raise Killed

    return callback


def small_deeponet():
    """Mini-batches drawn from the run's generator: resume must restore its state."""
    return Advection(n_train=32, n_test=8, batch_size=8, nx=16, nt=6, p=8, width=16, n_sensors=16)


@pytest.mark.parametrize(
    ("problem", "mode", "eval_every", "kill"),
    [
        (small_burgers, "mixed", 10, 25),
        (small_burgers, "mixed_then_fp32", 5, 38),  # resumes after the switch to fp32 (step 36)
        (small_deeponet, "fp16", 10, 25),
    ],
)
def test_a_killed_pinn_run_resumes_to_the_same_result_bit_for_bit(tmp_path, problem, mode, eval_every, kill):
    config = PhysicsTrainConfig(steps=40, lr=3e-3, eval_every=eval_every, measure_memory=False)
    straight = train(problem(), mode, config, out_dir=tmp_path / "straight")
    with pytest.raises(Killed):
        train(problem(), mode, config, out_dir=tmp_path / "run", callbacks=[_kill_at(kill)])
    saved = json.loads((tmp_path / "run" / "checkpoints.json").read_text())["checkpoints"]
    assert [c["epoch"] for c in saved] == [kill // eval_every, kill // eval_every - 1]
    resumed = train(problem(), mode, config, out_dir=tmp_path / "run", resume=True)
    _same_result(straight, resumed)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == list(range(eval_every, 41, eval_every))


def test_resume_of_a_finished_pinn_run_trains_no_further(tmp_path):
    config = PhysicsTrainConfig(steps=10, eval_every=5, measure_memory=False)
    first = train(Regression(), "fp32", config, out_dir=tmp_path)
    steps = []
    again = train(Regression(), "fp32", config, out_dir=tmp_path, resume=True, callbacks=[steps.append])
    assert steps == [] and again.final == first.final


def test_a_pinn_checkpoint_from_another_run_is_refused_by_name(tmp_path):
    train(Regression(), "fp32", PhysicsTrainConfig(steps=10, eval_every=5, measure_memory=False), out_dir=tmp_path)
    with pytest.raises(ValueError, match=r"different run \(lr: 0.001 -> 0.002\)"):
        train(Regression(), "fp32", PhysicsTrainConfig(steps=10, lr=2e-3, eval_every=5), out_dir=tmp_path, resume=True)
    with pytest.raises(ValueError, match=r"mode: 'fp32' -> 'mixed'"):
        train(Regression(), "mixed", PhysicsTrainConfig(steps=10, eval_every=5), out_dir=tmp_path, resume=True)


def test_a_damaged_newest_pinn_checkpoint_falls_back_to_the_previous(tmp_path, caplog):
    config = PhysicsTrainConfig(steps=15, eval_every=5, measure_memory=False)
    straight = train(Regression(), "fp32", config)
    with pytest.raises(Killed):
        train(Regression(), "fp32", config, out_dir=tmp_path, callbacks=[_kill_at(14)])
    (tmp_path / "checkpoint.pt").write_bytes(b"garbage")
    resumed = train(Regression(), "fp32", config, out_dir=tmp_path, resume=True)
    assert "checkpoint.pt is unusable" in caplog.text
    _same_result(straight, resumed)
    for name in ("checkpoint.pt", "checkpoint.1.pt"):
        (tmp_path / name).write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="no usable checkpoint"):
        train(Regression(), "fp32", config, out_dir=tmp_path, resume=True)


# -- the engine changes no result: plain loops written out reproduce it bit for bit ------------------


def test_operator_training_equals_the_plain_loop_bit_for_bit():
    """Trainer under ``full``: Adam + cosine over the seeded batches, one epoch after another, written out."""
    from lowprec.train.losses import make_loss
    from lowprec.train.trainer import parameter_groups

    data, config = Data(), TrainConfig(epochs=3, batch_size=4, lr=3e-3, progress=False, seed=5)
    model, reference = fno(), fno()
    Trainer(model, data, config=config).fit()

    torch.manual_seed(config.seed)
    loss_fn = make_loss("l2", 2, periodic=True)
    opt = torch.optim.Adam(parameter_groups(reference, config.weight_decay), lr=config.lr, eps=config.adam_eps)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs)
    for epoch in range(config.epochs):
        order = torch.randperm(len(data.y), generator=torch.Generator().manual_seed(config.seed * 100_003 + epoch))
        for idx in order.split(config.batch_size):
            opt.zero_grad(set_to_none=True)
            loss_fn(reference(data.x[idx]), data.y[idx]).backward()
            opt.step()
        sched.step()
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.equal(p, q)


def test_pinn_training_equals_the_plain_loop_bit_for_bit():
    """A fp32 PINN: Adam with the exponential lr decay on the problem's batches, written out."""
    from lowprec.physics import Compute
    from lowprec.physics.base import ResidualGuard

    problem, config = Regression(), PhysicsTrainConfig(steps=30, lr=3e-3, lr_decay=0.5, measure_memory=False, seed=2)
    result = train(problem, "fp32", config)

    torch.manual_seed(config.seed)
    data = problem.training_data(config.seed)
    model = problem.build_model(config.seed)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, eps=1e-8)
    gen, weights = torch.Generator().manual_seed(config.seed + 1), problem.loss_weights()
    for step in range(config.steps):
        batch = problem.batch(data, step, gen)
        model.zero_grad(set_to_none=True)
        terms = problem.loss_terms(Compute(model, torch.float32, ResidualGuard(enabled=False)), batch)
        sum(weights.get(k, 1.0) * v for k, v in terms.items()).backward()
        for group in opt.param_groups:
            group["lr"] = config.lr * config.lr_decay ** (step / (config.steps - 1))
        opt.step()
    for p, q in zip(result.master.parameters(), model.parameters(), strict=True):
        assert torch.equal(p, q)
