"""Every bad invocation: exit status 2, one line naming the argument or file and the fix, no traceback,
and nothing made on disk (no data generated, no stray config.yaml)."""

import pytest

from lowprec.cli import main

from . import tiny

TINY = tiny.TRAIN[:-1] + ["--epochs", "1", "--no-progress"]

FILES = {
    "bad.yaml": "train:\n  epochs: [1\n",
    "wrong_section.yaml": "model:\n  epochs: 2\n",
    "list.yaml": "- epochs\n- 2\n",
    "typo.yaml": "train:\n  epoch: 2\n",
    "a_file": "not a folder\n",
}

# (argv, words the line must contain). {tmp} is the test's folder, holding FILES.
CASES = [
    (["train", "--hidden-channels", "0"], ["hidden_channels=0", "positive"]),
    (["train", "--n-layers", "0"], ["n_layers=0"]),
    (["train", "--n-modes", "4", "4", "4", "4"], ["n_modes", "1 to 3"]),
    (["train", "--n-modes", "4", "4", "4"], ["n_modes", "2 spatial axes"]),
    (["train", "--config", "{tmp}/bad.yaml"], ["bad.yaml", "not valid YAML", "line 3"]),
    (["train", "--config", "{tmp}/wrong_section.yaml"], ["'epochs'", "belongs in section 'train'"]),
    (["train", "--config", "{tmp}/list.yaml"], ["list.yaml", "mapping"]),
    (["train", "--config", "{tmp}/typo.yaml"], ["'epoch'", "Did you mean 'epochs'"]),
    (["train", "--config", "{tmp}/missing.yaml"], ["missing.yaml", "does not exist"]),
    (["train", "--lr", "0"], ["lr=0.0", "positive"]),
    (["train", "--weight-decay", "-1"], ["weight_decay=-1.0"]),
    (["train", "--epochs", "0"], ["epochs", "positive"]),
    (["train", "--batch-size", "0"], ["batch_size", "positive"]),
    (["train", "--epochs", "two"], ["--epochs", "invalid int value"]),
    (["train", "--precision", "mixd"], ["'mixd'", "Did you mean 'mixed'"]),
    (["train", "--precision", "half:0.5,mixd:0.5"], ["'mixd'"]),
    (["train", "--model", "fnoo"], ["'fnoo'", "Did you mean 'fno'"]),
    (["train", "--factorization", "tuckr"], ["'tuckr'", "tucker"]),
    (["train", "--problem", "darcyy"], ["'darcyy'", "Did you mean 'darcy'"]),
    (["train", "--optimizer", "sgd"], ["'sgd'", "adam"]),
    (["train", "--scheduler", "cos"], ["'cos'", "cosine"]),
    (["train", "--loss", "l3"], ["'l3'"]),
    (["train", "--on-overflow", "never"], ["'never'", "skip"]),
    (["train", "--n-train", "0"], ["n_train=0"]),
    (["train", "--resolution", "1"], ["resolution=1"]),
    (["train", "--device", "tpu"], ["'tpu'", "cpu"]),
    (["train", "--problem-params", "viscosity"], ["problem_params", "viscosity"]),
    (["train", "--path", "{tmp}/none.npz"], ["none.npz"]),
    (["train", "--out-dir", "{tmp}/a_file/run"], ["--out-dir", "a_file", "not a folder"]),
    (["train", "--out-dir", "/proc/lowprec-run"], ["--out-dir", "/proc/lowprec-run", "cannot be written"]),
    (["train", "--cache-dir", "{tmp}/a_file/cache"], ["cache_dir", "a_file", "not a folder"]),
    (["train", "--resume", "--out-dir", "{tmp}/never-ran"], ["--resume", "never-ran", "no run"]),
    (["frobnicate"], ["invalid choice", "'frobnicate'"]),
    (["pinn", "burgers", "--set", "n_domain=-10"], ["n_domain=-10", "positive"]),
    (["pinn", "burgers", "--set", "nuu=0.1"], ["'nuu'"]),
    (["pinn", "burgers", "--steps", "0"], ["--steps 0", "positive"]),
    (["pinn", "burgers", "--lr", "0"], ["--lr 0.0", "positive"]),
    (["pinn", "burgerz"], ["'burgerz'"]),
    (["pinn", "burgers", "--compare", "--modes", "fp32,fp8"], ["--modes", "fp8"]),
    (["pinn", "burgers", "--precision", "fp8"], ["--precision", "'fp8'"]),
    (["pinn", "burgers", "--out", "{tmp}/a_file/out"], ["--out", "a_file"]),
    (["bench", "--device", "cpu", "--grids", "16", "--batch", "0", "--modes", "4"], ["--batch 0", "positive"]),
    (["bench", "--device", "cpu", "--grids", "16", "--modes", "32"], ["--modes"]),
    (["bench", "--device", "cpu", "--grids", "16", "--modes", "4", "--policies", "mixd"], ["'mixd'"]),
    (["quantize", "--preset", "w9a9"], ["'w9a9'"]),
    (["quantize", "--model", "fnoo"], ["'fnoo'"]),
    (["quantize", "--dataset", "darcyy", "--out", "{tmp}/q"], ["'darcyy'"]),
    (["quantize", "--out", "{tmp}/a_file/q"], ["--out", "a_file"]),
    (["pareto", "--presets", "w9a9"], ["'w9a9'"]),
    (["pareto", "--factors", "0"], ["factors"]),
    (["data", "info", "{tmp}/none.h5"], ["none.h5"]),
    (["data", "generate", "darcy", "--res", "9", "--n", "2", "--out", "/proc/lowprec.h5"], ["--out", "/proc"]),
    (["data", "generate", "darcy", "--res", "9", "--n", "2", "--cache-dir", "{tmp}/a_file/c"], ["--cache-dir"]),
    (["data", "generate", "darcy", "--res", "9", "--n", "2", "--out", "{tmp}/x.txt"], ["--out", ".h5"]),
    (["data", "generate", "darcyy"], ["'darcyy'"]),
]


@pytest.mark.parametrize("argv, words", CASES, ids=[" ".join(a[:4]) for a, _ in CASES])
def test_bad_invocation_is_one_line_exit_2_and_no_work(argv, words, tmp_path, monkeypatch, capsys):
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    cache = tmp_path / "cache"
    monkeypatch.setenv("LOWPREC_CACHE", str(cache))
    monkeypatch.chdir(tmp_path)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if argv[0] == "train":
        argv = argv[:1] + TINY + ["--out-dir", str(tmp_path / "run")] + argv[1:]  # the case's flags win
    before = set(tmp_path.rglob("*"))
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and "error" in lines[0] and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert set(tmp_path.rglob("*")) == before  # no data generated, no config.yaml, no folders
