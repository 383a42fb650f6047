"""What ``lowprec bench`` measures: :class:`BenchConfig`, importable without torch so that its parser builds fast."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .cases import Shape

# neuraloperator's precision settings that lowprec.bench.cases runs beside ours.
NEURALOP_PRECISIONS = ("full", "amp", "half", "mixed")
MODES = ("step", "layer")
RECOMPUTE = ("off", "on", "both")


@dataclass
class BenchConfig:
    """What to benchmark. The defaults are a GPU-sized configuration (FNO 2D, width 64, 4 layers).

    ``batches`` holds one batch size for every grid, or one per grid. ``backends``
    empty: each policy with its own backend; otherwise every policy once per backend.
    ``compare``: neuraloperator precisions to run beside ours (needs ``lowprec[compare]``).
    """

    mode: str = "step"
    model: str = "fno"
    grids: tuple[int, ...] = (128, 256, 512, 1024)
    batches: tuple[int, ...] = (8, 8, 8, 4)
    dim: int = 2
    width: int = 64
    layers: int = 4
    modes: int = 32
    factorization: str = "dense"
    rank: float = 0.05
    policies: tuple[str, ...] = ("full", "amp", "half", "mixed", "full_dft", "bf16", "fp16")
    backends: tuple[str, ...] = ()
    compare: tuple[str, ...] = NEURALOP_PRECISIONS
    compile: bool = False
    warmup: int = 3
    repeats: int = 10
    device: str = "auto"
    threads: int = 0
    accuracy: bool = True
    seed: int = 0
    recompute: str = "off"
    memory_report: bool = False

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"bench mode {self.mode!r}: choose one of {MODES}.")
        if len(self.batches) not in (1, len(self.grids)):
            raise ValueError(
                f"give one batch size, or one per grid ({len(self.grids)} grids), "
                f"got {len(self.batches)}: {self.batches}."
            )
        sizes = {
            "grids": min(self.grids, default=0),
            "batch": min(self.batches, default=0),
            "width": self.width,
            "layers": self.layers,
            "modes": self.modes,
            "repeats": self.repeats,
        }
        bad = [f"--{k} {v}" for k, v in sizes.items() if v < 1]
        bad += [f"--warmup {self.warmup}"] if self.warmup < 0 else []
        if bad:
            raise ValueError(f"{', '.join(bad)}: sizes and counts must be positive (warm-up at least 0).")
        if not 1 <= self.dim <= 3:
            raise ValueError(f"dim must be 1, 2 or 3, got {self.dim}.")
        if (
            self.model not in ("fno", "sfno", "gino")
            or (self.model, self.dim) in (("sfno", 1), ("sfno", 3))
            or (self.model == "gino" and self.dim != 3)
        ):
            raise ValueError(
                f"bench model {self.model!r} (dim {self.dim}): choose fno, sfno with --dim 2, or gino with --dim 3."
            )
        too_small = [g for g in self.grids if g < self.modes]
        if too_small:
            raise ValueError(
                f"grids {too_small} hold fewer than {self.modes} points; use --modes <= the smallest grid."
            )
        from ..precision import get_policy
        from ..precision.policy import BACKENDS

        for name in self.policies:
            get_policy(name)
        bad = [b for b in self.backends if b not in BACKENDS]
        if bad:
            raise ValueError(f"unknown backend(s) {bad}; choose from {BACKENDS}.")
        bad = [p for p in self.compare if p not in NEURALOP_PRECISIONS]
        if bad:
            raise ValueError(f"unknown neuraloperator precision(s) {bad}; choose from {NEURALOP_PRECISIONS}.")
        if self.repeats < 1 or self.warmup < 0:
            raise ValueError("repeats must be >= 1 and warmup >= 0.")
        if self.recompute not in RECOMPUTE:
            raise ValueError(f"recompute={self.recompute!r}: choose one of {RECOMPUTE}.")
        if self.recompute != "off" and self.mode != "step":
            raise ValueError("--recompute applies to --mode step (it recomputes whole FNO stages).")

    @property
    def recompute_options(self) -> tuple[bool, ...]:
        return {"off": (False,), "on": (True,), "both": (False, True)}[self.recompute]

    def batch_at(self, index: int) -> int:
        return self.batches[index if len(self.batches) > 1 else 0]

    def command(self, out: str = "") -> str:
        """The ``lowprec bench`` command line that runs this configuration."""

        def join(values):
            return ",".join(str(v) for v in values) or "none"

        parts = [
            "lowprec bench",
            f"--mode {self.mode}",
            f"--grids {join(self.grids)}",
            f"--batch {join(self.batches)}",
            f"--dim {self.dim}",
            f"--width {self.width}",
            f"--layers {self.layers}",
            f"--modes {self.modes}",
            f"--factorization {self.factorization}",
            f"--rank {self.rank:g}",
            f"--policies {join(self.policies)}",
            f"--compare {join(self.compare)}",
            f"--warmup {self.warmup}",
            f"--repeats {self.repeats}",
            f"--device {self.device}",
            f"--seed {self.seed}",
        ] + ([f"--threads {self.threads}"] if self.threads else [])
        if self.backends:
            parts.append(f"--backends {join(self.backends)}")
        if self.model != "fno":
            parts.append(f"--model {self.model}")
        if self.compile:
            parts.append("--compile")
        if not self.accuracy:
            parts.append("--no-accuracy")
        if self.recompute != "off":
            parts.append(f"--recompute {self.recompute}")
        if self.memory_report:
            parts.append("--memory-report")
        if out:
            parts.append(f"--out {out}")
        return " ".join(parts)

    def shape(self, index: int) -> Shape:
        from .cases import Shape

        return Shape(
            self.dim,
            self.width,
            self.layers,
            self.modes,
            self.grids[index],
            self.batch_at(index),
            self.factorization,
            self.rank,
            self.model,
        )
