"""The one training loop: neural operators and PINNs/DeepONets run through the same engine.

What every run shares lives here: the order of work, the per-step callbacks, the
progress bar, the checkpoints and exact resume. What differs (how a batch is
drawn, what one step computes, what an evaluation measures) belongs to a
:class:`Task`: :class:`~lowprec.train.Trainer` for operators (a round is an
epoch), :func:`lowprec.physics.train.train` for PINNs and DeepONets (a round is
the ``eval_every`` steps between two evaluations). The loop, top to bottom::

    for each round r, until task.rounds:
        task.start_round(r)
        for step in task.steps(r):
            outcome = task.step(step)               # forward, backward, optimizer step or skip
            callback(StepEvent(...)) for each callback
        record = task.end_round(r)                 # scheduler, evaluation -> one dict
        history.append(record); checkpoint (rank 0); log the record
    task.finish()

A task (or a callback) raises :class:`StopTraining` to end the run early; the
engine then skips the round's record and checkpoint and calls ``finish``.

Checkpoints hold the task's state plus every random generator the run draws
from, so a run resumed from the checkpoint after round r repeats rounds r+1...
bit for bit. They go through :mod:`lowprec.train.checkpoint`: atomic, the last
``keep`` with checksums, read weights-only.

Hooks for a user or a probe, none of which patch torch: ``callbacks`` see every
step (the model, the optimizer, the loss scaler, the loss); the tasks take an
``optimizer_factory`` and (operators) a ``scheduler_factory``; ``Task.step`` and
``Task.end_round`` (the evaluation) are methods a subclass overrides.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from torch import nn

from .._progress import progress_bar
from .checkpoint import load_checkpoint, load_latest, rng_state, save_checkpoint, save_rotating, set_rng_state
from .metrics import write_jsonl

log = logging.getLogger("lowprec")


class StopTraining(Exception):
    """Raised by a task's step or a callback to end the run after the current step."""


@dataclass(frozen=True)
class StepEvent:
    """What a callback sees after each step.

    Attributes:
        step: steps run so far in the whole run, this one included (1 = the first).
        round: the round (epoch, or evaluation window) it belongs to, from 0.
        loss: the step's loss, or None when the step was skipped (an overflow).
        model: the weights the optimizer updates (the fp32 masters of a mixed PINN).
        optimizer: the optimizer, after its step.
        scaler: the loss scaler (:class:`~lowprec.precision.LossScaler`), after its update.
        record: the task's own record of the step (a PINN's ``StepRecord``; None for operators).
    """

    step: int
    round: int
    loss: float | None
    model: nn.Module
    optimizer: Any
    scaler: Any
    record: Any = None


Callback = Callable[[StepEvent], None]
#: ``(parameter groups, lr, eps) -> optimizer``: how a task builds its optimizer (Adam by default).
OptimizerFactory = Callable[[list[dict], float, float], Any]


class Task(Protocol):
    """What the engine drives. ``rounds`` is the run's length; the rest is called in the loop's order."""

    rounds: int
    model: nn.Module
    optimizer: Any
    scaler: Any

    def start_round(self, round: int) -> None: ...

    def steps(self, round: int) -> Iterable[Any]:
        """The round's steps: whatever :meth:`step` takes (a batch index, a step number)."""
        ...

    def step(self, item: Any) -> tuple[float | None, Any]:
        """One optimizer step (or skip); returns (loss or None when skipped, the task's record or None)."""
        ...

    def end_round(self, round: int) -> dict:
        """Close the round (scheduler step, evaluation) and return its metrics record."""
        ...

    def finish(self) -> None: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


@dataclass
class Engine:
    """Drive ``task`` round after round, with callbacks, checkpoints in ``out_dir`` and a progress bar.

    Args:
        task: a :class:`Task`.
        out_dir: where ``metrics.jsonl`` and the checkpoints go (None: nothing on disk).
        keep_checkpoints: how many of the latest rounds' checkpoints ``out_dir`` keeps.
        callbacks: called with a :class:`StepEvent` after every step.
        progress: show a progress bar (on a terminal; plain lines otherwise).
        desc: the bar's label.
        leave: keep the finished bar on screen (False for runs that are part of a comparison).
        is_writer: whether this process writes (False on every rank but 0 of a distributed job).
        log_record: formats a round's record for the console (None: no line per round).
        steps_per_round: steps in round r, for the bar's total (None: an open total).
        round_label: the bar's label during round r (None: ``desc``).
    """

    task: Task
    out_dir: Path | None = None
    keep_checkpoints: int = 2
    callbacks: Sequence[Callback] = ()
    progress: bool = True
    desc: str = "train"
    leave: bool = True
    is_writer: bool = True
    log_record: Callable[[dict], str] | None = None
    steps_per_round: Callable[[int], int] | None = None
    round_label: Callable[[int], str] | None = None

    def __post_init__(self):
        self.out_dir = Path(self.out_dir) if self.out_dir is not None else None
        self.round = 0
        self.step_count = 0
        self.history: list[dict] = []

    def run(self, max_rounds: int | None = None) -> list[dict]:
        """Run until ``task.rounds`` (or at most ``max_rounds`` more); returns the records of every round."""
        task = self.task
        last = task.rounds if max_rounds is None else min(task.rounds, self.round + max_rounds)
        total = sum(self.steps_per_round(r) for r in range(self.round, last)) if self.steps_per_round else None
        bar = progress_bar(
            total=total,
            desc=self.desc,
            unit="step",
            disable=not self.progress or not self.is_writer,
            leave=self.leave,
        )
        try:
            while self.round < last:
                task.start_round(self.round)
                if self.round_label is not None:
                    bar.set_description(self.round_label(self.round))
                for item in task.steps(self.round):
                    loss, record = task.step(item)
                    self.step_count += 1
                    event = StepEvent(
                        self.step_count, self.round, loss, task.model, task.optimizer, task.scaler, record
                    )
                    for callback in self.callbacks:
                        callback(event)
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.4g}" if loss is not None else "skipped", refresh=False)
                record = task.end_round(self.round)
                self.round += 1
                self.history.append(record)
                if self.out_dir is not None:
                    state = self.state_dict()  # on every rank: a sharded model gathers its weights collectively
                    if self.is_writer:
                        save_rotating(self.out_dir, state, self.keep_checkpoints)
                        write_jsonl(self.out_dir / "metrics.jsonl", self.history)
                if self.log_record is not None and self.is_writer:
                    (bar.write if self.progress else log.info)(self.log_record(record))
        except StopTraining:
            pass
        finally:
            bar.close()
        task.finish()
        return self.history

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The task's state with the engine's position, its history and every random generator's state."""
        return {
            **self.task.state_dict(),
            "epoch": self.round,
            "steps": self.step_count,
            "history": self.history,
            "rng": rng_state(),
        }

    def save(self, path: str | Path) -> Path:
        """Write a checkpoint atomically: a directory (or its ``checkpoint.pt``) rotates, any other path is one file.

        Every process calls it (the state may be gathered from all of them); only the writer writes.
        """
        path, state = Path(path), self.state_dict()
        if not self.is_writer:
            return path
        if path.is_dir() or path.name == "checkpoint.pt":
            return save_rotating(path if path.is_dir() else path.parent, state, self.keep_checkpoints)
        save_checkpoint(path, state)
        return path

    def resume(self, path: str | Path, map_location=None) -> tuple[dict, Path]:
        """Load a checkpoint file, or a run directory's newest good one (falling back past damaged files).

        Restores the task (``task.load_state_dict``, which may refuse a different configuration), the
        position, the history and the random generators; returns the raw state and the file it came from.
        """
        path = Path(path)
        if path.is_dir():
            state, path = load_latest(path, map_location=map_location)
        else:
            state = load_checkpoint(path, map_location=map_location)
        self.task.load_state_dict({**state, "_path": path})
        self.round, self.history = state["epoch"], list(state["history"])
        self.step_count = int(state.get("steps", 0))
        set_rng_state(state["rng"])
        return state, path
