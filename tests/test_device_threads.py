"""CPU bf16 detection, the demo's policy choice built on it, and the CLI's thread policy."""

import argparse

import pytest
import torch

from lowprec._device import cpu_native_bf16, fast_policies
from lowprec._threads import add_threads_flag, configure_threads, default_threads, resolve_threads
from lowprec.demo import demo_policies

CPU = torch.device("cpu")
ZEN4 = {"fpu", "avx2", "avx512f", "avx512_bf16"}
SAPPHIRE_RAPIDS = {"avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"}
SKYLAKE = {"fpu", "avx2", "avx512f", "avx512bw"}
GRAVITON3 = {"fp", "asimd", "sve", "bf16"}


def never_measured():
    raise AssertionError("the speed probe ran although the CPU flags were readable")


@pytest.mark.parametrize(
    "flags, expected",
    [(ZEN4, "avx512_bf16"), (SAPPHIRE_RAPIDS, "amx_bf16"), (GRAVITON3, "bf16"), (SKYLAKE, None), (set(), None)],
)
def test_native_bf16_is_read_from_the_cpu_flags(flags, expected):
    assert cpu_native_bf16(flags, measure=never_measured) == expected


def test_without_readable_flags_a_bf16_product_is_measured(monkeypatch):
    monkeypatch.setattr("lowprec._device._cpu_flags", lambda: None)
    assert cpu_native_bf16(measure=lambda: 3.2) == "measured"
    assert cpu_native_bf16(measure=lambda: 0.4) is None  # widened to fp32: slower


def test_the_probe_times_real_products():
    from lowprec._device import _bf16_matmul_speedup

    assert _bf16_matmul_speedup(n=32, repeats=1) > 0


def test_cpu_with_native_bf16_compares_full_with_bf16():
    policies, why = demo_policies(CPU, native_bf16="avx512_bf16")
    assert policies == ("full", "bf16") and "avx512_bf16" in why
    assert fast_policies(CPU, "amx_bf16") == ("bf16",)


def test_cpu_without_native_bf16_says_nothing_is_faster_and_shows_mixed():
    policies, why = demo_policies(CPU, native_bf16=None)
    assert policies == ("full", "mixed") and "no reduced-precision policy is faster" in why
    assert fast_policies(CPU, None) == ()


def test_gpu_compares_full_with_mixed_and_bf16():
    policies, why = demo_policies(torch.device("cuda"), native_bf16=None)
    assert policies == ("full", "mixed", "bf16") and "GPU" in why


def test_detection_runs_on_this_machine():
    assert demo_policies(CPU)[0][0] == "full"


@pytest.mark.parametrize(
    "cores, load, expected",
    [(2, 0.1, 2), (2, 0.6, 1), (2, 1.4, 1), (2, 9.0, 1), (16, 3.2, 13), (16, 0.0, 16), (1, 0.0, 1)],
)
def test_default_threads_leave_the_busy_cores_alone(cores, load, expected):
    assert default_threads(cores=cores, load=load) == expected


def test_explicit_threads_win_then_the_environment_then_the_load():
    assert resolve_threads(3, environ={"OMP_NUM_THREADS": "2"}, cores=2, load=0.0) == (3, "--threads")
    assert resolve_threads(None, environ={"OMP_NUM_THREADS": "2"}, cores=16, load=9.0) == (2, "OMP_NUM_THREADS")
    assert resolve_threads(0, environ={"OMP_NUM_THREADS": ""}, cores=2, load=1.7)[0] == 1
    assert resolve_threads(None, environ={}, cores=4, load=0.0)[0] == 4


def test_negative_threads_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="positive thread count"):
        resolve_threads(-1)


def test_configure_sets_torch_and_the_flag_parses():
    before = torch.get_num_threads()
    try:
        parser = argparse.ArgumentParser()
        add_threads_flag(parser)
        assert parser.parse_args([]).threads is None
        assert configure_threads(parser.parse_args(["--threads", "1"]).threads) == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_every_computing_command_has_threads():
    from lowprec.cli import build_parser

    def leaves(parser, path=()):
        if hasattr(parser, "_ready"):  # sub-commands add their arguments when first used
            parser._ready()
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            yield path, parser
        for action in subs:
            for name, child in action.choices.items():
                yield from leaves(child, path + (name,))

    computing = {"train", "demo", "bench", "pinn", "deeponet", "quantize", "pareto", "generate"}
    found = {path: "--threads" in p._option_string_actions for path, p in leaves(build_parser())}
    checked = {path: has for path, has in found.items() if computing & set(path)}
    assert len(checked) >= len(computing) and all(checked.values()), checked
