"""Precision schedules: which policy runs in which part of training.

Tu et al. train in half precision first, then mixed, then full, and find the
schedule beats full precision throughout. Their split for 500 epochs was
125 / 250 / 125 epochs, about 25% / 50% / 25%, which is our default; their
mixed phase ran without the tanh stabilizer (better on Navier-Stokes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .policy import PrecisionPolicy, get_policy

PolicyLike = str | PrecisionPolicy


@dataclass(frozen=True)
class PrecisionSchedule:
    """An ordered list of (fraction of training, policy); the fractions sum to 1.

    Epoch ``e`` of ``total`` runs the policy whose phase contains it; phase
    ``k`` ends at epoch ``round(total * (f_0 + ... + f_k))``.
    """

    phases: tuple[tuple[float, PrecisionPolicy], ...]

    def __init__(self, phases: Sequence[tuple[float, PolicyLike]]):
        if not phases:
            raise ValueError("a PrecisionSchedule needs at least one (fraction, policy) phase.")
        parsed = []
        for fraction, policy in phases:
            if not 0 < float(fraction) <= 1:
                raise ValueError(f"schedule fraction {fraction} for {policy!r} must lie in (0, 1].")
            parsed.append((float(fraction), get_policy(policy)))
        total = sum(f for f, _ in parsed)
        if abs(total - 1) > 1e-6:
            raise ValueError(
                f"schedule fractions sum to {total:g}, not 1: " + ", ".join(f"{p.name}:{f:g}" for f, p in parsed)
            )
        object.__setattr__(self, "phases", tuple(parsed))

    @classmethod
    def paper(cls) -> PrecisionSchedule:
        """Tu et al.'s schedule: half 25%, mixed (no stabilizer) 50%, full 25%."""
        return cls([(0.25, "half"), (0.5, "mixed"), (0.25, "full")])

    @classmethod
    def parse(cls, text: str) -> PrecisionSchedule:
        """Parse ``"half:0.25,mixed:0.5,full:0.25"`` (or ``"paper"``)."""
        if text.strip() == "paper":
            return cls.paper()
        phases = []
        for item in text.split(","):
            name, sep, fraction = item.strip().rpartition(":")
            if not sep:
                raise ValueError(
                    f"schedule item {item!r} is not 'policy:fraction', e.g. 'half:0.25,mixed:0.5,full:0.25'."
                )
            phases.append((float(fraction), name))
        return cls(phases)

    def boundaries(self, total_epochs: int) -> list[int]:
        """The first epoch of each phase after the first."""
        ends, acc = [], 0.0
        for fraction, _ in self.phases[:-1]:
            acc += fraction
            ends.append(round(total_epochs * acc))
        return ends

    def policy_at(self, epoch: int, total_epochs: int) -> PrecisionPolicy:
        """The policy for 0-based ``epoch`` of ``total_epochs``."""
        for end, (_, policy) in zip(self.boundaries(total_epochs), self.phases):
            if epoch < end:
                return policy
        return self.phases[-1][1]

    def __str__(self) -> str:
        """``"half:0.25,mixed:0.5,full:0.25"``; a policy with per-layer overrides as its spec, which
        :meth:`parse` reads back (``"bf16 | blocks.0=full:1"``)."""
        return ",".join(f"{p.spec}:{f:g}" for f, p in self.phases)
