"""``lowprec demo`` at its tiny size: the policies for this machine, a table naming the device, plots."""

import json

import pytest

from lowprec.cli import main


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LOWPREC_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize(
    "native, second", [("avx512_bf16", "bf16"), pytest.param(None, "mixed", marks=pytest.mark.slow)]
)
def test_tiny_demo_compares_the_policies_for_this_cpu(tmp_path, capsys, monkeypatch, native, second):
    monkeypatch.setattr("lowprec.demo.cpu_native_bf16", lambda: native)
    out = tmp_path / "demo"
    assert (
        main(
            [
                "demo",
                "--size",
                "tiny",
                "--epochs",
                "1",
                "--n-train",
                "10",
                "--out-dir",
                str(out),
                "--no-progress",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "lowprec demo on CPU" in printed and "ms/step" in printed and "saved activations MiB" in printed
    assert "peak GPU MiB" not in printed  # no GPU column on a CPU
    assert (native is None) == ("no reduced-precision policy is faster" in printed)
    results = json.loads((out / "results.json").read_text())
    assert [r["policy"] for r in results["rows"]] == ["full", second]
    assert results["device_name"].startswith("CPU ") and results["rows"][1]["activation_mib"] > 0
    assert (out / "prediction.png").stat().st_size > 10_000 and (out / "curves.png").is_file()


def test_unknown_size_or_policy_is_one_clear_error_before_any_work(tmp_path):
    from lowprec.demo import run_demo

    with pytest.raises(ValueError, match="not one of default, tiny"):
        run_demo(size="huge")
    with pytest.raises(ValueError, match="unknown precision policy 'bogus'"):
        run_demo({"out_dir": str(tmp_path / "demo")}, policies=("full", "bogus"), size="tiny")
    assert not (tmp_path / "demo").exists() and not (tmp_path / "cache").exists()
