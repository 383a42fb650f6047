"""The committed result tables match their data, and the repository's size gate works."""

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_tables = _load(REPO / "benchmarks" / "make_tables.py", "make_tables")
check_size = _load(REPO / ".ci" / "check_size.py", "check_size")


def test_committed_tables_match_their_data():
    """``make_tables.py --check`` over benchmarks/: what CI runs."""
    assert make_tables.main(["--check"]) == 0


def test_check_names_a_stale_table_and_rewrite_fixes_it(tmp_path, capsys):
    shutil.copy(REPO / "benchmarks" / "results" / "physics" / "results.json", tmp_path)
    page = tmp_path / "page.md"
    page.write_text("intro\n<!-- table: physics_seeds results.json burgers_s3 -->\n<!-- /table -->\nend\n")
    assert make_tables.main(["--check", "--root", str(tmp_path)]) == 1
    assert "physics_seeds results.json burgers_s3" in capsys.readouterr().out
    assert make_tables.main(["--root", str(tmp_path)]) == 0
    text = page.read_text()
    assert text.startswith("intro\n") and text.endswith("<!-- /table -->\nend\n")
    assert "| mixed | 0.0332 | 0.0344 | 0.0334 | 0.0337 |" in text
    assert make_tables.main(["--check", "--root", str(tmp_path)]) == 0
    page.write_text(text.replace("0.0344", "0.0340"))  # a hand edit
    assert make_tables.main(["--check", "--root", str(tmp_path)]) == 1


def test_physics_ratio_pairs_seeds_and_uses_the_baseline(tmp_path):
    data = {
        "hosts": {},
        "experiments": [
            {
                "id": "base",
                "group": "g",
                "title": "base",
                "host": "h",
                "date": None,
                "runs": [{"mode": "fp32", "seed": 0, "error": 1.0}, {"mode": "fp32", "seed": 1, "error": 3.0}],
            },
            {
                "id": "fin",
                "group": "g",
                "title": "fin",
                "host": "h",
                "date": None,
                "baseline": "base",
                "runs": [{"mode": "mixed_then_fp32", "seed": 0, "error": 1.5}],
            },
        ],
    }
    (tmp_path / "r.json").write_text(json.dumps(data))
    rows = make_tables.physics_errors(tmp_path / "r.json", "g").splitlines()[2:]
    assert rows[0].endswith("| 2.0000 | - | - | - | - | - |")  # fp32 mean of seeds 0 and 1
    assert rows[1].endswith("| 1.5000 | +50.0% |")  # against seed 0 only, from the baseline


def test_pareto_table_is_the_sweeps_own_and_counts_its_front():
    path = REPO / "benchmarks" / "results" / "pareto_fno_navier_stokes.jsonl"
    text = make_tables.pareto(path)
    from lowprec.quant.study import pareto_front

    points = make_tables._jsonl(path)
    assert text.count("*\n") == len(pareto_front(points)) == 12
    assert "spans 487x in BOPs" in text


def test_size_gate_names_each_offender():
    sizes = {
        "a.py": 10,
        "benchmarks/results/x.json": 900_000,
        "benchmarks/results/y.json": 900_000,
        "benchmarks/results/z.json": 900_000,
    }
    assert check_size.offenders(sizes) == []  # 2.7 MB under results, no file over 1 MB
    sizes["big.bin"] = 1_000_001
    lines = check_size.offenders(sizes)
    assert lines == [lines[0]] and lines[0].startswith("big.bin: 1.00 MB")
    sizes["benchmarks/results/w.json"] = 400_000
    lines = check_size.offenders(sizes)
    assert len(lines) == 2 and lines[1].startswith("benchmarks/results/: 3.10 MB")
    assert check_size.offenders({"benchmarksXresults/a": 5_000_000}, file_limit=10**7) == []


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_size_gate_reads_tracked_files_only(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "small.txt").write_text("x")
    (tmp_path / "big.bin").write_bytes(b"\0" * 1_100_000)
    (tmp_path / "untracked.bin").write_bytes(b"\0" * 1_100_000)
    subprocess.run(["git", "-C", str(tmp_path), "add", "small.txt", "big.bin"], check=True)
    assert check_size.tracked_sizes(str(tmp_path)) == {"small.txt": 1, "big.bin": 1_100_000}
    result = subprocess.run(
        [sys.executable, str(REPO / ".ci" / "check_size.py"), str(tmp_path)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and result.stdout.splitlines() == [
        "big.bin: 1.10 MB, over the 1 MB limit for a tracked file"
    ]


def test_repository_passes_its_size_gate():
    assert check_size.offenders(check_size.tracked_sizes(str(REPO))) == []
