"""Precision policies, schedules, stabilizers, emulation and loss scaling."""

from .emulation import fft_native, round_through
from .policy import PRESETS, PrecisionPolicy, current_policy, get_policy
from .scaling import LossScaler, PrecisionOverflowError, first_nonfinite_module
from .schedule import PrecisionSchedule
from .stabilizers import hardclip, sigma_clip, stabilize

__all__ = [
    "PRESETS",
    "PrecisionPolicy",
    "PrecisionSchedule",
    "LossScaler",
    "PrecisionOverflowError",
    "current_policy",
    "get_policy",
    "fft_native",
    "round_through",
    "stabilize",
    "hardclip",
    "sigma_clip",
    "first_nonfinite_module",
]
