"""Training PINNs and DeepONets in any training mode, through the shared engine.

:class:`PhysicsTask` is the PINN side of :mod:`lowprec.train.engine` (the operator trainer is the other):
the engine runs the steps, calls the callbacks, evaluates every ``eval_every`` steps and checkpoints
after each evaluation. Per step::

    master -> working copy        (mixed, bf16: round the fp32 weights to the compute dtype)
    loss terms on the working copy, in the compute dtype, derivatives included
      (a term that overflows: shrink its residual scale and recompute, or report it)
    scaled loss -> backward       (compute dtype) -> gradients copied to the masters
    unscale; non-finite gradients: skip the step and lower the loss scale
    Adam on the masters           (fp32, or fp16 for pure fp16)
    diagnostics                   (grad norm, underflow share, stalled-update share; not timed)

Time per step covers the training work only (diagnostics and evaluations are
left out); it is the median over the run. Peak memory is the CUDA allocator's
peak on GPU; on CPU it is the peak of the tensors allocated during one profiled
training step plus the persistent state (weights, gradients, Adam moments).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import math
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from lowprec.precision import LossScaler, PrecisionOverflowError

from ..train.checkpoint import has_checkpoint
from ..train.engine import Callback, Engine, OptimizerFactory, StopTraining
from .base import Compute, NonFiniteLossError, PhysicsProblem, ResidualGuard
from .diagnostics import grad_norm, residual_rounding, stalled_update_share, underflow_share
from .modes import TRAINING_MODES, TrainingMode, WeightCopies, dtype_name, get_mode

log = logging.getLogger("lowprec")

NONFINITE_ACTIONS = ("raise", "stop")
#: residual_rounding above which a half-precision run is warned that rounding now blurs its gradient.
#: Set above the share an fp16 run reaches while mixed keeps fp32's pace (on Burgers, around a tenth),
#: and well below the share bf16 (8 significant bits) reaches on the same problems.
RESIDUAL_ROUNDING_WARN = 0.25


@dataclass(frozen=True)
class PhysicsTrainConfig:
    """How long and how to train.

    Args:
        steps: optimizer steps.
        lr: Adam learning rate at the first step.
        lr_decay: learning rate at the last step as a fraction of ``lr``, reached by
            exponential decay (1: constant; None: the problem's default). A decayed
            rate lets the final error settle, so that comparing modes compares
            precision rather than where Adam's oscillation happened to stop.
        seed: seeds the weights, the training data and the batch order, so every
            mode of a comparison starts from the same weights and sees the same data.
        eval_every: steps between error evaluations (0: the problem's default).
        adam_eps / loss_scaling / residual_guard: override the mode's setting (None: keep it).
        init_loss_scale / scale_growth_interval: the dynamic loss scaler.
        on_nonfinite: ``"raise"`` a NonFiniteLossError, or ``"stop"`` the run and
            record the failure in the result (``--compare`` uses this, so one
            failing mode does not hide the others).
        measure_memory: profile one step for peak memory.
        log_every: print a progress line every this many steps (0: quiet).
        progress: show a progress bar with the latest error (the CLI turns it on).
    """

    steps: int = 1000
    lr: float = 1e-3
    lr_decay: float | None = None
    seed: int = 0
    eval_every: int = 0
    adam_eps: float | None = None
    loss_scaling: bool | None = None
    residual_guard: bool | None = None
    init_loss_scale: float = 2.0**16
    scale_growth_interval: int = 1000
    on_nonfinite: str = "raise"
    measure_memory: bool = True
    log_every: int = 0
    progress: bool = False

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}.")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}.")
        if self.lr_decay is not None and not 0 < self.lr_decay <= 1:
            raise ValueError(f"lr_decay must lie in (0, 1] (final lr / initial lr), got {self.lr_decay}.")
        if self.on_nonfinite not in NONFINITE_ACTIONS:
            raise ValueError(f"on_nonfinite={self.on_nonfinite!r}; choose one of {NONFINITE_ACTIONS}.")

    def mode_for(self, mode: TrainingMode) -> TrainingMode:
        """The mode with this config's overrides applied."""
        changes = {
            k: v
            for k, v in (
                ("adam_eps", self.adam_eps),
                ("loss_scaling", self.loss_scaling),
                ("residual_guard", self.residual_guard),
            )
            if v is not None
        }
        return mode.replace(**changes) if changes else mode


@dataclass
class StepRecord:
    step: int
    loss: float
    terms: dict
    grad_norm: float
    underflow: float
    stalled: float
    loss_scale: float
    skipped: bool
    ms: float


@dataclass
class RunResult:
    """Everything a run produced. ``final`` holds the last evaluation (``final["error"]``)."""

    problem: PhysicsProblem
    mode: TrainingMode
    config: PhysicsTrainConfig
    device: str
    history: list = field(default_factory=list)
    evals: list = field(default_factory=list)
    final: dict = field(default_factory=dict)
    ms_per_step: float = math.nan
    peak_mib: float | None = None
    state_mib: float = math.nan
    failure: str | None = None
    failed_step: int | None = None
    skipped_steps: int = 0
    guard_backoffs: int = 0
    steps_done: int = 0
    master: nn.Module | None = None
    working: nn.Module | None = None
    optimizer: torch.optim.Optimizer | None = None

    @property
    def error(self) -> float:
        return self.final.get("error", math.nan)

    def late_mean(self, key: str, fraction: float = 0.1) -> float:
        """Mean of a per-step diagnostic over the last ``fraction`` of the steps run (nan-aware)."""
        recs = [getattr(r, key) for r in self.history if not r.skipped]
        recs = [v for v in recs[-max(1, int(len(recs) * fraction)) :] if not math.isnan(v)]
        return sum(recs) / len(recs) if recs else math.nan

    def summary(self) -> dict:
        """JSON-ready summary."""
        return {
            "problem": self.problem.name,
            "problem_params": self.problem.params(),
            "mode": self.mode.name,
            "mode_detail": self.mode.describe(),
            "device": self.device,
            "config": dataclasses.asdict(self.config),
            "final": self.final,
            "ms_per_step": self.ms_per_step,
            "peak_mib": self.peak_mib,
            "state_mib": self.state_mib,
            "failure": self.failure,
            "failed_step": self.failed_step,
            "skipped_steps": self.skipped_steps,
            "guard_backoffs": self.guard_backoffs,
            "steps_done": self.steps_done,
            "late_underflow": self.late_mean("underflow"),
            "late_stalled": self.late_mean("stalled"),
            "evals": self.evals,
        }


def _to(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


@contextlib.contextmanager
def _native_stderr_silenced():
    """Send what C++ code writes to file descriptor 2 to /dev/null for the duration.

    Kineto prints to fd 2 when the profiler starts and stops ("profiler_stop", "Memory block of
    unknown size was allocated before the profiling started"): two lines per run that say nothing
    about it and look like faults. Python's own sys.stderr is flushed first and restored after.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _profile_peak_bytes(fn) -> int | None:
    """Run ``fn()`` once; return the peak bytes it allocated on CPU (above what was live before).

    The profiler records each allocation and free as a signed "[memory]" event;
    their running sum peaks at the step's peak. Returns None if the profiler
    gives no memory events (the API is not public; we degrade rather than fail).
    What ``fn`` raises propagates: only the profiler's own failures are absorbed.
    """
    from torch.profiler import ProfilerActivity, profile

    prof = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
    try:
        with _native_stderr_silenced():
            prof.start()
    except Exception as exc:  # pragma: no cover - depends on the torch build
        log.warning("peak memory not measured: %s", exc)
        fn()
        return None
    try:
        fn()
    finally:
        with _native_stderr_silenced():
            prof.stop()
    try:
        events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    except Exception as exc:  # pragma: no cover - depends on the torch build
        log.warning("peak memory not measured: %s", exc)
        return None
    if not events:
        return None
    events.sort(key=lambda e: e.start_ns())
    return max(0, max(itertools.accumulate(e.nbytes() for e in events)))


def _describe_failure(problem, mode, step, bad, terms, guard, weights, scaler=None) -> str:
    vals = ", ".join(f"{k}={float(v.detach() if torch.is_tensor(v) else v):.3g}" for k, v in terms.items())
    weights_ok = all(bool(torch.isfinite(p).all()) for p in weights.master.parameters())
    if not weights_ok:
        why = "the weights themselves are inf/NaN after the previous update" + (
            f": in {dtype_name(mode.master_dtype)}, Adam's eps={mode.adam_eps:g} rounds to 0 and an "
            "underflowed second moment gives 0/0; use --adam-eps 1e-4"
            if mode.master_dtype == torch.float16 and torch.tensor(mode.adam_eps, dtype=torch.float16) == 0
            else "; lower the learning rate or use the mixed mode"
        )
    elif bad == ["gradients"] and scaler is not None and scaler.enabled:
        why = (
            f"the gradients overflow even at loss scale {scaler.scale_value:g} (below the minimum "
            f"{scaler.min_scale:g}), so scaling cannot help; lower the learning rate, or use bf16 or fp32"
        )
    elif bad == ["gradients"]:
        why = "the gradients overflowed and loss scaling is off; enable it (--loss-scaling) or use bf16"
    elif guard.enabled:
        why = (
            f"the residual guard could not bring it into {dtype_name(mode.compute_dtype)} range "
            f"(scales {guard.scales}); a data term cannot be rescaled: normalize the data, or use bf16"
        )
    else:
        why = (
            "no residual guard in this mode; enable it (--residual-guard) or lower the learning rate"
            if mode.compute_dtype == torch.float16
            else "lower the learning rate"
        )
    return (
        f"{problem.title}, mode {mode.name}: step {step}: loss term(s) {', '.join(repr(b) for b in bad)} "
        f"not finite ({vals}). Cause: {why}."
    )


class PhysicsTask:
    """A PINN/DeepONet run as a :class:`~lowprec.train.engine.Task`: a round is the ``eval_every`` steps
    between two evaluations, and each round's record is that evaluation.

    Built by :func:`train`, which runs it through the shared :class:`~lowprec.train.engine.Engine`.
    ``result`` (a :class:`RunResult`) fills as it runs; :meth:`finish` completes it.
    """

    def __init__(
        self,
        problem: PhysicsProblem,
        mode,
        config: PhysicsTrainConfig,
        device: str = "cpu",
        data: dict | None = None,
        optimizer_factory: OptimizerFactory | None = None,
    ):
        mode = config.mode_for(get_mode(mode))
        self.problem, self.mode, self.config = problem, mode, config
        self.dev = dev = torch.device(device)
        self.eval_every = config.eval_every or problem.default_eval_every
        self.lr_decay = problem.default_lr_decay if config.lr_decay is None else config.lr_decay
        self.rounds = -(-config.steps // self.eval_every)
        torch.manual_seed(config.seed)
        self.data = problem.training_data(config.seed) if data is None else data
        self.weights = WeightCopies(problem.build_model(config.seed).to(dev), mode)
        self.model = self.weights.master
        self.params = list(self.weights.master.parameters())
        factory = optimizer_factory or default_optimizer
        self.optimizer = factory([{"params": self.params}], config.lr, mode.adam_eps)
        self.scaler = LossScaler(
            init_scale=config.init_loss_scale, growth_interval=config.scale_growth_interval, enabled=mode.loss_scaling
        )
        self.guard = ResidualGuard(enabled=mode.residual_guard)
        self.loss_weights = problem.loss_weights()
        self.gen = torch.Generator().manual_seed(config.seed + 1)
        self.result = RunResult(
            problem,
            mode,
            config,
            device=str(dev),
            master=self.weights.master,
            working=self.weights.working,
            optimizer=self.optimizer,
        )
        self.cuda = dev.type == "cuda"
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(dev)
        self.probe_batch = _to(problem.batch(self.data, 0, torch.Generator().manual_seed(config.seed)), dev)
        self.rounding_warned = False
        self.switch = mode.finish_step(config.steps)
        self.profile_steps: set[int] = set()
        if config.measure_memory and not self.cuda and config.steps > 2:
            # The first step of each phase: fp16 and fp32 compute have different peaks.
            self.profile_steps = {1} if self.switch is None else {1, self.switch + 1}
        self.peak_step_bytes: int | None = None
        self.state_before_switch = 0
        self.evaluate(0)

    # -- evaluation --------------------------------------------------------------------------------
    def evaluate(self, step: int) -> dict:
        """The problem's error metrics at ``step`` (appended to ``result.evals``), and the rounding share."""
        problem, mode, weights = self.problem, self.mode, self.weights
        weights.sync()
        with mode.policy:
            metrics = problem.evaluate(weights.working, mode.compute_dtype, self.data)
        # fp32 runs (and an fp32 finish) report what mixed's fp16 would make of their residuals.
        half = mode.compute_dtype == mode.probe_dtype
        rounding = residual_rounding(
            problem, weights.master, mode if half else TRAINING_MODES["mixed"], self.probe_batch
        )
        metrics = {"step": step, **metrics, "residual_rounding": rounding}
        if half and rounding > RESIDUAL_ROUNDING_WARN and not self.rounding_warned:
            self.rounding_warned = True
            log.warning(
                "%s, mode %s: at step %d rounding to %s is %.0f%% of the loss residual (rms), and "
                "the gradient is off by about as much: from here the run is likely to fall behind fp32. "
                "Remedies: fp16 rather than bf16 (3 more bits), an fp32 finish (--precision "
                "mixed_then_fp32), or fp32.",
                problem.title,
                mode.name,
                step,
                dtype_name(mode.compute_dtype),
                100 * rounding,
            )
        self.result.evals.append(metrics)
        return metrics

    def fail(self, step: int, bad: list, terms: dict) -> None:
        """Report a loss or gradient that cannot be rescued: raise, or (``on_nonfinite="stop"``) record it."""
        msg = _describe_failure(self.problem, self.mode, step, bad, terms, self.guard, self.weights, self.scaler)
        if self.config.on_nonfinite == "raise":
            raise NonFiniteLossError(msg, step, bad, self.mode.name)
        log.warning(msg)
        self.result.failure, self.result.failed_step = msg, step

    def loss_terms(self, batch) -> tuple[dict, list]:
        """The loss terms, recomputed with smaller residual scales while a guarded term overflows."""
        mode, guard = self.mode, self.guard
        for _ in range(guard.max_retries + 1):
            with mode.policy:
                terms = self.problem.loss_terms(Compute(self.weights.working, mode.compute_dtype, guard), batch)
            bad = [k for k, v in terms.items() if not bool(torch.isfinite(v))]
            if not bad or guard.back_off(bad):
                return terms, bad
        return terms, bad

    # -- the engine's task -------------------------------------------------------------------------
    def start_round(self, round: int) -> None:
        pass

    def steps(self, round: int) -> range:
        return range(round * self.eval_every, min((round + 1) * self.eval_every, self.config.steps))

    def _finish_in_fp32(self) -> None:
        """The fp32 finish: same master weights, same Adam state; only the compute changes."""
        self.state_before_switch = self.weights.state_bytes(self.optimizer)
        self.mode = self.mode.finish()
        self.weights = WeightCopies(self.weights.master, self.mode)
        self.result.working = self.weights.working
        self.scaler = LossScaler(enabled=False)
        self.guard.enabled = False  # every scale 1 from now on; its back-off count stays in the record

    def step(self, step: int) -> tuple[float | None, StepRecord]:
        """Step ``step`` (from 0): draw its batch, train on it; the loss (None when skipped) and its record."""
        if step == self.switch:
            self._finish_in_fp32()
        batch = _to(self.problem.batch(self.data, step, self.gen), self.dev)
        if step in self.profile_steps:
            holder = []
            peak = _profile_peak_bytes(lambda: holder.append(self._one_step(step, batch)))
            if peak is not None:
                self.peak_step_bytes = max(peak, self.peak_step_bytes or 0)
            rec = holder[0]
            rec.ms = math.nan  # profiler overhead: not a timing
        else:
            rec = self._one_step(step, batch)
        self.result.history.append(rec)
        self.result.steps_done = step + 1
        return (None if rec.skipped else rec.loss), rec

    def _one_step(self, step: int, batch: dict) -> StepRecord:
        mode, weights, scaler, params, config = self.mode, self.weights, self.scaler, self.params, self.config
        t0 = time.perf_counter()
        weights.sync()
        weights.zero_grad()
        terms, bad = self.loss_terms(batch)
        if bad:
            self.fail(step, bad, terms)
            raise StopTraining
        loss = sum(self.loss_weights.get(k, 1.0) * v for k, v in terms.items())
        scaler.scale(loss).backward()
        weights.grads_to_master()
        if self.cuda:
            torch.cuda.synchronize(self.dev)
        t_diag = time.perf_counter()
        # Measured on the gradient as computed (compute dtype, loss scale still in): what had to fit.
        underflow = underflow_share(weights.working_grads(), mode.probe_dtype)
        before = [p.detach().clone() for p in params]
        t1 = time.perf_counter()
        nonfinite = scaler.unscale_(weights.master)
        skipped = bool(nonfinite)
        if skipped:
            if not scaler.enabled:
                self.fail(step, ["gradients"], terms)
                raise StopTraining
            try:
                scaler.update(overflow=True)
            except PrecisionOverflowError as exc:
                self.fail(step, ["gradients"], {**terms, "loss_scale": scaler.scale_value})
                log.warning("%s", exc)
                raise StopTraining from None
            self.result.skipped_steps += 1
        else:
            for group in self.optimizer.param_groups:
                group["lr"] = config.lr * self.lr_decay ** (step / max(1, config.steps - 1))
            self.optimizer.step()
            scaler.update(overflow=False)
            self.guard.update()
        if self.cuda:
            torch.cuda.synchronize(self.dev)
        ms = 1e3 * ((t_diag - t0) + (time.perf_counter() - t1))
        gnorm = math.nan if skipped else grad_norm(p.grad for p in params if p.grad is not None)
        stalled = math.nan if skipped else stalled_update_share(before, params, mode.probe_dtype)
        return StepRecord(
            step,
            float(loss.detach()),
            {k: float(v.detach()) for k, v in terms.items()},
            gnorm,
            underflow,
            stalled,
            scaler.scale_value if scaler.enabled else 1.0,
            skipped,
            ms,
        )

    def end_round(self, round: int) -> dict:
        """Evaluate after the round's last step; the evaluation is the round's record."""
        step = self.result.steps_done
        metrics = self.evaluate(step)
        config = self.config
        if config.log_every and (step % config.log_every == 0 or step == config.steps):
            rec = self.result.history[-1]
            print(
                f"[{self.problem.name} {self.mode.name}] step {step}: loss {rec.loss:.3e} error "
                f"{metrics['error']:.4f} rounding {metrics['residual_rounding']:.1%} |g| {rec.grad_norm:.2e} "
                f"underflow {rec.underflow:.1%} "
                f"stalled {rec.stalled:.1%} scale {rec.loss_scale:g} {rec.ms:.1f} ms",
                flush=True,
            )
        return metrics

    def finish(self) -> None:
        """Evaluate where the run stopped (if not yet), then fill in the result's summary figures."""
        result, weights, mode = self.result, self.weights, self.mode
        if not result.evals or result.evals[-1]["step"] != result.steps_done:
            self.evaluate(result.steps_done)
        result.final = dict(result.evals[-1])
        if mode.is_mixed:
            # The master weights evaluated in fp32: shows what the compute-dtype rounding costs at inference.
            result.final["error_fp32_eval"] = self.problem.evaluate(weights.master, mode.master_dtype, self.data)[
                "error"
            ]
        times = [r.ms for r in result.history[5:] if not math.isnan(r.ms)] or [
            r.ms for r in result.history if not math.isnan(r.ms)
        ]
        result.ms_per_step = statistics.median(times) if times else math.nan
        result.guard_backoffs = self.guard.backoffs
        state = max(self.state_before_switch, weights.state_bytes(self.optimizer))
        result.state_mib = state / 2**20
        if self.cuda:
            result.peak_mib = torch.cuda.max_memory_allocated(self.dev) / 2**20
        elif self.peak_step_bytes is not None:
            result.peak_mib = (state + self.peak_step_bytes) / 2**20

    # -- checkpoints ---------------------------------------------------------------------------------
    def _label(self) -> dict:
        """What a checkpoint must match to resume: problem, mode and every setting that changes the result."""
        config = dataclasses.asdict(self.config)
        for key in _RESUMABLE_CHANGES:
            config.pop(key)
        return {"problem": self.problem.name, "params": self.problem.params(), "mode": self.result.mode.name, **config}

    def state_dict(self) -> dict:
        result = self.result
        return {
            "config": self._label(),
            "master": self.weights.master.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "guard": {"scales": dict(self.guard.scales), "backoffs": self.guard.backoffs, "clean": self.guard._clean},
            "generator": self.gen.get_state(),
            "result": {
                "history": [dataclasses.astuple(r) for r in result.history],
                "state_before_switch": self.state_before_switch,
                "peak_step_bytes": self.peak_step_bytes,
                "rounding_warned": self.rounding_warned,
            },
        }

    def load_state_dict(self, state: dict) -> None:
        saved, current = state["config"], self._label()
        changed = sorted(k for k in current if saved.get(k) != current[k])
        if changed:
            diffs = ", ".join(f"{k}: {saved.get(k)!r} -> {current[k]!r}" for k in changed)
            raise ValueError(
                f"checkpoint {state.get('_path', '')} was written by a different run ({diffs}); resume with the "
                "original problem, mode and settings, or start a new run in another directory."
            )
        saved_result, result = state["result"], self.result
        # One record per step run; the evaluations after step 0 are the engine's history, one per round.
        result.history = [StepRecord(*r) for r in saved_result["history"]]
        result.evals = result.evals[:1] + list(state["history"])
        result.steps_done, result.skipped_steps = len(result.history), sum(r.skipped for r in result.history)
        self.weights.master.load_state_dict(state["master"])
        if self.switch is not None and result.steps_done > self.switch:
            self._finish_in_fp32()
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.guard.scales = dict(state["guard"]["scales"])
        self.guard.backoffs, self.guard._clean = int(state["guard"]["backoffs"]), int(state["guard"]["clean"])
        self.gen.set_state(state["generator"])
        self.state_before_switch = saved_result["state_before_switch"]
        self.peak_step_bytes = saved_result["peak_step_bytes"]
        self.rounding_warned = saved_result["rounding_warned"]


# Settings a resumed run may change without changing the result.
_RESUMABLE_CHANGES = ("measure_memory", "log_every", "progress")


def default_optimizer(groups: list[dict], lr: float, eps: float) -> torch.optim.Optimizer:
    """Adam, as Hayford et al. train (with the mode's eps: larger for fp16)."""
    return torch.optim.Adam(groups, lr=lr, eps=eps)


def train(
    problem: PhysicsProblem,
    mode,
    config: PhysicsTrainConfig = PhysicsTrainConfig(),
    device: str = "cpu",
    data: dict | None = None,
    *,
    out_dir: str | os.PathLike | None = None,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    optimizer_factory: OptimizerFactory | None = None,
) -> RunResult:
    """Train ``problem``'s model in precision ``mode`` (a name or a TrainingMode); return a RunResult.

    Runs through the same :class:`~lowprec.train.engine.Engine` as the operator trainer.

    Args:
        out_dir: write ``metrics.jsonl`` (one evaluation per line) and an atomic checkpoint after every
            evaluation here (the last two kept, with checksums); None: nothing on disk.
        resume: continue from ``out_dir``'s newest good checkpoint (if it has one); the run ends with the
            same weights and records as an uninterrupted one.
        callbacks: each called with a :class:`~lowprec.train.engine.StepEvent` after every step
            (its ``record`` is the step's :class:`StepRecord`).
        optimizer_factory: ``(parameter groups, lr, eps) -> optimizer`` (default: Adam); the loop sets
            each group's learning rate every step (the exponential decay).

    Raises:
        NonFiniteLossError: a loss term or the gradients went inf/NaN and could
            not be rescued, with ``config.on_nonfinite="raise"`` (the message names
            the step, the term and the likely cause).
    """
    task = PhysicsTask(problem, mode, config, device, data, optimizer_factory)
    engine = Engine(
        task,
        out_dir=out_dir,
        callbacks=callbacks,
        progress=config.progress,
        desc=f"{problem.name} {task.mode.name} seed {config.seed}",
        leave=False,
        steps_per_round=lambda r: len(task.steps(r)),
    )
    if resume and out_dir is not None and has_checkpoint(out_dir):
        engine.resume(out_dir, map_location=task.dev)
    engine.run()
    return task.result
