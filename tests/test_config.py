import dataclasses

import pytest
import torch

from lowprec.config import DataConfig, _field_types, build_datasets, build_model, load_config, make_config
from lowprec.data import PDEDataset, save_h5


def test_sections_and_flat_keys_and_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(
        "data:\n  resolution: 33\n  n_train: 10\nmodel:\n  n_modes: [8, 8]\nepochs: 3\ntrain:\n  precision: mixed\n"
    )
    cfg = load_config(str(path), {"epochs": 5, "hidden_channels": 16})
    assert cfg.data.resolution == 33 and cfg.data.n_train == 10
    assert cfg.model.n_modes == (8, 8) and cfg.model.hidden_channels == 16
    assert cfg.train.epochs == 5 and cfg.train.precision == "mixed"


def test_unknown_keys_suggest_the_closest(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model:\n  widht: 3\n")
    with pytest.raises(KeyError, match="unknown config key 'widht'"):
        load_config(str(path))
    path.write_text("hidden_chanels: 3\n")
    with pytest.raises(KeyError, match="Did you mean 'hidden_channels'"):
        load_config(str(path))
    path.write_text("train:\n  resolution: 3\n")  # a real key, but in the wrong section
    with pytest.raises(KeyError, match="section 'train'"):
        load_config(str(path))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_config(str(tmp_path / "missing.yaml"))


def test_bad_values_raise():
    with pytest.raises(ValueError, match="cannot read 'many' as int"):
        make_config({"epochs": "many"})
    with pytest.raises(ValueError, match="unknown scheduler"):
        make_config({"scheduler": "linear"})


def test_model_must_match_the_data():
    data = PDEDataset(torch.randn(4, 2, 16, 16), torch.randn(4, 1, 16, 16))
    model = build_model(make_config({"n_modes": [4], "hidden_channels": 8}).model, data)
    assert model(data.x).shape == (4, 1, 16, 16)
    with pytest.raises(ValueError, match="n_modes .* has 3 entries but the data has 2 spatial axes"):
        build_model(make_config({"n_modes": [4, 4, 4]}).model, data)
    with pytest.raises(ValueError, match="unknown model"):
        build_model(make_config({"model": "resnet"}).model, data)


def test_every_model_kind_builds_from_the_config():
    data = PDEDataset(torch.randn(4, 1, 16, 16), torch.randn(4, 1, 16, 16))
    for kind in ("fno", "tfno", "unet", "transformer"):
        model = build_model(
            make_config({"model": kind, "n_modes": [4], "hidden_channels": 8, "n_layers": 2}).model, data
        )
        assert model(data.x).shape == (4, 1, 16, 16), kind


def test_a_key_in_two_sections_is_refused_when_the_key_map_is_built():
    @dataclasses.dataclass(frozen=True)
    class First:
        seed: int = 0

    @dataclasses.dataclass(frozen=True)
    class Second:
        seed: int = 1

    with pytest.raises(TypeError, match="'seed' is a field of both first and second"):
        _field_types({"first": First, "second": Second})
    assert _field_types()["seed"][0] == "train"  # lowprec's own sections pass (checked at import, too)


def test_problem_names_take_hyphens():
    assert DataConfig(problem="navier-stokes").problem == "navier_stokes"
    assert make_config({"problem": "burgers-pdebench"}).data.problem == "burgers_pdebench"


def test_train_reads_several_test_files_one_per_resolution(tmp_path):
    def field(n, s, seed):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(n, 1, s, generator=g)
        return PDEDataset(x, 2 * x, grid="periodic")

    save_h5(field(6, 16, 0), tmp_path / "train.h5")
    save_h5(field(3, 16, 1), tmp_path / "test16.h5")
    save_h5(field(3, 32, 2), tmp_path / "test32.h5")
    cfg = make_config(
        {
            "path": str(tmp_path / "train.h5"),
            "n_train": 6,
            "n_test": 2,
            "test_path": [str(tmp_path / "test16.h5"), str(tmp_path / "test32.h5")],
        }
    )
    train, tests = build_datasets(cfg.data, progress=False)
    assert len(train.x) == 6 and {k: tuple(v.x.shape) for k, v in tests.items()} == {
        "test_16": (2, 1, 16),
        "test_32": (2, 1, 32),
    }
    # One file keeps the name of the single test set; a YAML string is a list of one.
    one = make_config({"path": str(tmp_path / "train.h5"), "test_path": str(tmp_path / "test32.h5")})
    assert one.data.test_path == (str(tmp_path / "test32.h5"),)
    assert list(build_datasets(one.data, progress=False)[1]) == ["test"]


def test_a_saved_run_with_no_test_path_reads_back_equal(tmp_path):
    # config.yaml of runs saved when test_path held one file or none: `test_path: null` or a string.
    path = tmp_path / "config.yaml"
    path.write_text("data:\n  test_path: null\n")
    assert load_config(str(path)).to_dict() == make_config({}).to_dict()
    assert DataConfig(test_path="a.h5").test_path == ("a.h5",)
