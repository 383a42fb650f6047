"""Checkpoints: no code runs on load, the last K survive damage to the newest, the manifest guards them."""

import json
import logging

import pytest
import torch

from lowprec.train import CheckpointError, TrainConfig, load_checkpoint, load_latest, save_rotating
from lowprec.train.checkpoint import MANIFEST, sha256

from .test_trainer import make, strip


class Payload:
    """Unpickling this object would create ``marker``: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('pwned')",)


def plant(run_dir, marker, with_manifest=True):
    """A crafted checkpoint.pt (and a manifest that vouches for it, as an attacker would write)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "checkpoint.pt"
    torch.save({"epoch": 1, "model": Payload(marker)}, path)
    if with_manifest:
        entry = {"file": "checkpoint.pt", "epoch": 1, "sha256": sha256(path)}
        (run_dir / MANIFEST).write_text(json.dumps({"format": 1, "checkpoints": [entry]}))
    return path


def test_a_crafted_pickle_runs_nothing(tmp_path):
    marker = tmp_path / "marker"
    path = plant(tmp_path / "run", marker)
    with pytest.raises(CheckpointError, match="weights-only"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="no usable checkpoint.*checkpoint.pt"):
        load_latest(tmp_path / "run")
    with pytest.raises(CheckpointError):
        make(TrainConfig(epochs=2, batch_size=8, progress=False)).resume(tmp_path / "run")
    assert not marker.exists()


def test_keeps_the_last_two_with_checksums(tmp_path):
    make(TrainConfig(epochs=3, batch_size=8, progress=False), tmp_path).fit()
    assert sorted(p.name for p in tmp_path.glob("checkpoint*")) == [
        "checkpoint.1.pt",
        "checkpoint.pt",
        "checkpoints.json",
    ]
    manifest = json.loads((tmp_path / MANIFEST).read_text())["checkpoints"]
    assert [(e["file"], e["epoch"]) for e in manifest] == [("checkpoint.pt", 3), ("checkpoint.1.pt", 2)]
    assert all(sha256(tmp_path / e["file"]) == e["sha256"] for e in manifest)
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("damage", [b"", b"garbage", "truncate"])
def test_a_damaged_latest_falls_back_to_the_previous_and_resumes_exactly(tmp_path, damage, caplog):
    config = TrainConfig(epochs=4, batch_size=8, progress=False)
    straight = make(config)
    straight.fit()
    make(config, tmp_path).fit(max_epochs=3)
    latest = tmp_path / "checkpoint.pt"
    data = latest.read_bytes()
    latest.write_bytes(data[: len(data) // 2] if damage == "truncate" else damage)

    caplog.set_level(logging.WARNING, logger="lowprec")
    resumed = make(config, tmp_path, seed=7).resume(tmp_path)
    assert resumed.epoch == 2
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and str(latest) in warnings[0] and "previous" in warnings[0]
    resumed.fit()
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert strip(straight.history) == strip(resumed.history)


def test_no_good_checkpoint_is_one_error_naming_every_file(tmp_path):
    make(TrainConfig(epochs=2, batch_size=8, progress=False), tmp_path).fit()
    for name in ("checkpoint.pt", "checkpoint.1.pt"):
        (tmp_path / name).write_bytes(b"\0" * 10)
    with pytest.raises(CheckpointError) as err:
        load_latest(tmp_path)
    message = str(err.value)
    assert "checkpoint.pt:" in message and "checkpoint.1.pt:" in message and "\n" not in message


def test_save_rotating_survives_a_stop_between_rotation_and_write(tmp_path):
    for epoch in (1, 2):
        save_rotating(tmp_path, {"epoch": epoch, "w": torch.full((3,), float(epoch))})
    # A stop after the rename, before the new file: only checkpoint.1.pt (epoch 2) is left, manifest unchanged.
    (tmp_path / "checkpoint.1.pt").unlink()
    (tmp_path / "checkpoint.pt").rename(tmp_path / "checkpoint.1.pt")
    state, path = load_latest(tmp_path)
    assert state["epoch"] == 2 and path.name == "checkpoint.1.pt"


def test_save_into_a_run_directory_keeps_the_manifest_true(tmp_path):
    t = make(TrainConfig(epochs=2, batch_size=8, progress=False), tmp_path)
    t.fit(max_epochs=1)
    t.save(tmp_path / "checkpoint.pt")  # by hand, as before the manifest existed
    state, path = load_latest(tmp_path)
    assert path.name == "checkpoint.pt" and state["epoch"] == 1
    t.fit()
    t.save(tmp_path / "elsewhere.pt")  # a file of the caller's own: one file, not in the manifest
    assert load_checkpoint(tmp_path / "elsewhere.pt")["epoch"] == 2
    assert "elsewhere.pt" not in (tmp_path / MANIFEST).read_text()
