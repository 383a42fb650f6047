"""Run configuration: which data, which model, how to train; from YAML and command-line flags.

A run is three small frozen dataclasses, :class:`DataConfig`,
:class:`ModelConfig` and :class:`lowprec.train.TrainConfig`, plus an output
directory. A YAML file may give their fields flat or under ``data:``,
``model:`` and ``train:`` sections; every field is also a command-line flag
(``--hidden-channels 64``), and flags override the file. A key that no
section has is an error that suggests the closest one, never ignored.

:func:`build_run` turns a configuration into a model (with its normalizers
attached), a training set and named test sets.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ._catalog import MODELS
from ._hints import did_you_mean, problem_key
from .train.settings import TrainConfig

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class DataConfig:
    """Where the data comes from.

    Either a generator (``problem``, its parameters in ``problem_params``, with
    ``resolution``, ``n_train``, ``n_test`` and ``data_seed``; test sets at ``test_resolutions`` hold the same problems on other
    grids), or a file (``path``; ``test_path`` for separate test files, one per resolution for
    zero-shot super-resolution, otherwise the last ``n_test`` samples of ``path``;
    ``problem_params`` then go to the loader, e.g. ``t_in``/``t_out`` for the view of a time series).
    """

    problem: str = "darcy"
    problem_params: dict = field(default_factory=dict)
    path: str | None = None
    test_path: tuple[str, ...] = ()
    x_key: str = "x"
    y_key: str = "y"
    n_train: int = 1000
    n_test: int = 100
    resolution: int = 65
    test_resolutions: tuple[int, ...] = ()
    data_seed: int = 0
    normalize: bool = True
    cache_dir: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "problem", problem_key(self.problem))  # navier-stokes: navier_stokes
        # One file or several; None is how runs saved before test_path took several read back.
        paths = self.test_path
        object.__setattr__(
            self, "test_path", () if paths is None else (paths,) if isinstance(paths, str) else tuple(paths)
        )
        for key in ("n_train", "n_test"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key}={getattr(self, key)}: give at least 1 sample.")
        if self.resolution < 2 or any(r < 2 for r in self.test_resolutions):
            raise ValueError(
                f"resolution={self.resolution}, test_resolutions={list(self.test_resolutions)}: "
                "every grid needs at least 2 points per axis (node grids: 2^k+1, e.g. 33, 65)."
            )
        if self.data_seed < 0:
            raise ValueError(f"data_seed={self.data_seed}: seeds are non-negative.")


@dataclass(frozen=True)
class ModelConfig:
    """The solver. ``model`` is a name in :func:`lowprec.models.available_models`.

    ``factorization`` defaults to dense for FNO and Tucker for TFNO. UNet and Transformer read
    ``hidden_channels`` as their width (UNet features, Transformer embedding) and ``n_layers``
    as their depth; ``patch_size`` is the Transformer's. Each model takes the settings its
    builder names (:mod:`lowprec.models.registry`).
    """

    model: str = "fno"
    n_modes: tuple[int, ...] = (16, 16)
    hidden_channels: int = 32
    n_layers: int = 4
    factorization: str | None = None
    rank: float = 0.05
    domain_padding: float = 0.0
    positional_embedding: bool = True
    channel_mlp_expansion: float = 0.5
    patch_size: int = 4
    recompute: bool = False

    def __post_init__(self):
        from .models.registry import resolve_model

        resolve_model(self.model)  # an unknown name raises here, listing the registered ones
        if not 1 <= len(self.n_modes) <= 3 or min(self.n_modes) < 1:
            raise ValueError(
                f"n_modes={list(self.n_modes)}: give 1 to 3 positive mode counts (one per spatial "
                "axis, or one for every axis)."
            )
        for key in ("hidden_channels", "n_layers", "patch_size"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key}={getattr(self, key)}: must be a positive integer.")
        if self.factorization not in (None, "dense", "tucker", "cp"):
            raise ValueError(f"unknown factorization {self.factorization!r}; choose dense, tucker or cp.")
        if self.rank <= 0 or self.channel_mlp_expansion < 0 or self.domain_padding < 0:
            raise ValueError(
                f"rank={self.rank} must be positive, channel_mlp_expansion="
                f"{self.channel_mlp_expansion} and domain_padding={self.domain_padding} non-negative."
            )


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    out_dir: str = "runs/latest"

    def to_dict(self) -> dict:
        out = {"out_dir": self.out_dir}
        for section in SECTIONS:
            values = {f.name: getattr(getattr(self, section), f.name) for f in dataclasses.fields(SECTIONS[section])}
            out[section] = {
                k: (list(v) if isinstance(v, tuple) else v if _plain(v) else str(v)) for k, v in values.items()
            }
        return out


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


def _plain(v) -> bool:
    return v is None or isinstance(v, (bool, int, float, str, list, dict))


def _field_types(sections: dict | None = None) -> dict[str, tuple[str, Any]]:
    """Every configurable key -> (section, type); section '' for top-level keys.

    Flags and flat YAML keys carry no section, so a field name in two sections would make one of
    them unreachable: that raises a TypeError naming both.
    """
    out = {"out_dir": ("", str)}
    for section, cls in (SECTIONS if sections is None else sections).items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name in out:
                raise TypeError(
                    f"config key {f.name!r} is a field of both {out[f.name][0] or 'the run'} and "
                    f"{section} ({cls.__name__}); flat keys and flags need one field per name: "
                    "rename one of them."
                )
            out[f.name] = (section, hints[f.name])
    return out


_field_types()  # a key in two sections fails here, at import, not in a user's run


def _base_type(tp) -> Any:
    """int, float, str, bool or tuple for a field's annotation (Optional/Union -> its first plain type)."""
    origin = typing.get_origin(tp)
    if origin in (tuple, list):
        return tuple
    if tp is dict or origin is dict:
        return dict
    if origin is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _base_type(args[0]) if args else str
    return tp if tp in (int, float, str, bool) else str


def _item_type(tp) -> type:
    """The element type of a tuple field (``tuple[str, ...]``: str); int when the annotation does not say."""
    args = [a for a in typing.get_args(tp) if a is not Ellipsis]
    return args[0] if args and args[0] in (int, float, str) else int


def _coerce(key: str, value: Any, tp) -> Any:
    base = _base_type(tp)
    if value is None:
        return None
    try:
        if base is tuple:
            values = value if isinstance(value, (list, tuple)) else [value]
            return tuple(_item_type(tp)(v) for v in values)
        if base is dict:
            if isinstance(value, dict):
                return dict(value)
            # From the command line: ["viscosity=1e-3", "t_out=10"], values read as YAML scalars.
            pairs = [value] if isinstance(value, str) else list(value)
            out = {}
            for pair in pairs:
                name, sep, text = pair.partition("=")
                if not sep:
                    raise ValueError(pair)
                out[name.strip()] = yaml.safe_load(text)
            return out
        if base is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                return value.lower() in ("true", "1", "yes")
            return bool(value)
        if base is int and isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        return base(value)
    except (TypeError, ValueError):
        raise ValueError(f"config key {key!r}: cannot read {value!r} as {getattr(base, '__name__', base)}.") from None


def unknown_key_error(key: str, where: str) -> KeyError:
    hint = did_you_mean(key, _field_types())
    return KeyError(f"unknown config key {key!r} in {where}.{hint} Valid keys: {', '.join(sorted(_field_types()))}.")


def flatten(raw: dict, where: str) -> dict:
    """Accept flat keys or data/model/train sections; return flat keys, checked."""
    flat = {}
    types = _field_types()
    for key, value in (raw or {}).items():
        if key in SECTIONS and isinstance(value, dict):
            for k, v in value.items():
                if k in types and types[k][0] != key:
                    home = f"section {types[k][0]!r}" if types[k][0] else "the top level"
                    raise KeyError(
                        f"config key {k!r} in {where} is under section {key!r} but belongs in {home}; move it there."
                    )
                if k not in types:
                    raise unknown_key_error(k, f"{where} (section {key!r})")
                flat[k] = v
        elif key in types:
            flat[key] = value
        else:
            raise unknown_key_error(key, where)
    return flat


def make_config(values: dict) -> RunConfig:
    """Build a RunConfig from flat keys (unknown keys raise)."""
    types = _field_types()
    per_section: dict[str, dict] = {s: {} for s in SECTIONS}
    out_dir = RunConfig.out_dir
    for key, value in values.items():
        if key not in types:
            raise unknown_key_error(key, "the configuration")
        section, tp = types[key]
        value = _coerce(key, value, tp)
        if section:
            per_section[section][key] = value
        else:
            out_dir = value
    return RunConfig(**{s: SECTIONS[s](**per_section[s]) for s in SECTIONS}, out_dir=out_dir)


def load_config(path: str | None = None, overrides: dict | None = None) -> RunConfig:
    """Read a YAML file (if any), apply ``overrides`` (flat keys), and build the RunConfig."""
    values = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"config file {path} does not exist; write one (see configs/ in the "
                "repository) or pass settings as flags."
            )
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(e, "problem", None) or "malformed YAML"
            raise ValueError(
                f"config file {path} is not valid YAML{where} ({problem}); fix that line "
                "(keys as 'key: value', sections indented under data:, model:, train:)."
            ) from None
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"config file {path} cannot be read ({e}).") from None
        if not isinstance(raw, dict):
            raise ValueError(f"config file {path} must hold a mapping of keys to values, got {type(raw).__name__}.")
        values = flatten(raw, str(path))
    values.update(overrides or {})
    return make_config(values)


HELP = {
    "out_dir": "directory for checkpoint.pt, metrics.jsonl, config.yaml and plots",
    "problem": "data generator: darcy, darcy_pdebench, navier_stokes, burgers, burgers_pdebench, "
    "diffusion_sorption; hyphens work too (see lowprec data generate --help)",
    "problem_params": "the generator's parameters (e.g. viscosity=1e-4 t_in=10), or for --path the "
    "loader's (e.g. t_in=10 t_out=1 for time series); YAML: a mapping",
    "path": "read data from this .pt/.npz/.h5/.mat file instead of generating it",
    "test_path": "separate test file(s), e.g. one per resolution (default: the last n_test samples of --path)",
    "x_key": "name of the input array in the file",
    "y_key": "name of the target array in the file",
    "n_train": "training samples",
    "n_test": "test samples per test set",
    "resolution": "grid points per axis of the training data (2^k+1 for node grids: 33, 65, 129)",
    "test_resolutions": "extra test grids with the same problems (zero-shot super-resolution)",
    "data_seed": "seed of the generated data (test sets use data_seed + 1)",
    "normalize": "fit per-channel unit-Gaussian normalizers on the training data",
    "cache_dir": "where generated data is cached (default: $LOWPREC_CACHE or ~/.cache/lowprec)",
    "model": f"a registered model: {', '.join(MODELS)} (lowprec.models.available_models())",
    "n_modes": "Fourier modes per axis (one value: the same on every axis)",
    "hidden_channels": "width of the Fourier layers",
    "n_layers": "number of Fourier layers",
    "factorization": "spectral weights: dense, tucker or cp (default: dense for fno, tucker for tfno)",
    "rank": "factorization rank as a fraction of the dense parameter count",
    "domain_padding": "pad each axis by this fraction (non-periodic problems)",
    "positional_embedding": "append grid coordinates as input channels",
    "channel_mlp_expansion": "hidden width of each block's channel MLP, as a multiple of the width",
    "patch_size": "Transformer patch size in grid points per axis",
    "recompute": "FNO/TFNO: keep only each stage's input for backward and recompute the rest (less memory, "
    "about one more forward pass a step)",
    "epochs": "training epochs",
    "batch_size": "training batch size (per process under --nproc or torchrun)",
    "eval_batch_size": "evaluation batch size",
    "optimizer": "adam or adamw",
    "lr": "learning rate",
    "weight_decay": "weight decay",
    "adam_eps": "Adam epsilon",
    "scheduler": "learning-rate schedule: cosine, step or none",
    "scheduler_t_max": "length of the cosine schedule in epochs, its T_max (default: epochs)",
    "step_size": "epochs between learning-rate drops (step scheduler)",
    "gamma": "learning-rate factor at each drop (step scheduler)",
    "loss": "training loss: l2 (relative L2) or h1 (relative H1)",
    "precision": "policy (full, amp, half, mixed, mixed_tanh, amp_bf16, half_bf16, mixed_bf16, full_dft, "
    "bf16, fp16) or schedule ('half:0.25,mixed:0.5,full:0.25', or 'paper')",
    "on_overflow": "on inf/NaN: skip (drop the step, lower the loss scale) or raise (default: the policy's)",
    "init_loss_scale": "initial dynamic loss scale",
    "max_skipped_steps": "stop after this many overflowing steps in a row",
    "seed": "seed of the model initialisation and batch order",
    "device": "auto, cpu or cuda[:N]",
    "progress": "show progress bars",
    "parallel": "with several processes: ddp (whole model on every process) or fsdp (FSDP2: parameters, "
    "gradients and Adam moments sharded over the processes)",
    "grad_compression": "with several processes: none, or bf16 (gradients communicated in bf16: half the "
    "bytes, about 2^-8 relative rounding)",
}


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per configuration key; absent flags leave the file's value alone."""
    types = _field_types()
    for section in ("", *SECTIONS):
        group = parser.add_argument_group(f"{section or 'run'} settings")
        for key, (sec, tp) in types.items():
            if sec != section:
                continue
            base = _base_type(tp)
            flag = "--" + key.replace("_", "-")
            if base is bool:
                group.add_argument(
                    flag, dest=key, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=HELP.get(key)
                )
            elif base is tuple:
                item = _item_type(tp)
                group.add_argument(
                    flag,
                    dest=key,
                    type=item,
                    nargs="+",
                    default=argparse.SUPPRESS,
                    metavar="N" if item is int else key.split("_")[-1].upper(),
                    help=HELP.get(key),
                )
            elif base is dict:
                group.add_argument(
                    flag, dest=key, nargs="+", default=argparse.SUPPRESS, metavar="KEY=VALUE", help=HELP.get(key)
                )
            else:
                group.add_argument(
                    flag,
                    dest=key,
                    type=base,
                    default=argparse.SUPPRESS,
                    metavar=key.split("_")[-1].upper(),
                    help=HELP.get(key),
                )


def flag_overrides(args: argparse.Namespace) -> dict:
    types = _field_types()
    return {k: v for k, v in vars(args).items() if k in types}


# -- checking and building a run ----------------------------------------------------------------


def check_writable(path: str | Path, what: str) -> None:
    """Raise ValueError unless the folder ``path`` (made later if missing) can be written: tried, not guessed."""
    import tempfile

    path = Path(path).expanduser()
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{what} {path}: {existing} is a file, not a folder; choose another path.")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        raise ValueError(
            f"{what} {path} cannot be written ({existing}: {e.strerror or e}); choose a writable folder."
        ) from None


def check_data(d: DataConfig, n_modes: tuple | None = None) -> None:
    """Check a data configuration without reading or generating data: files exist, problem known, cache writable.

    ``n_modes`` (an FNO's) is checked against the problem's number of spatial axes.
    """
    if d.path is not None:
        for key, path in [("path", d.path)] + [("test_path", p) for p in d.test_path]:
            if not Path(path).is_file():
                raise FileNotFoundError(f"data.{key} {path} does not exist; give an existing .pt/.npz/.h5/.mat file.")
        return
    from .data.base import default_cache_dir
    from .data.problems import PROBLEMS

    if d.problem not in PROBLEMS:
        raise ValueError(
            f"unknown problem {d.problem!r}.{did_you_mean(d.problem, PROBLEMS)} Generators: "
            f"{', '.join(PROBLEMS)}; or set data.path to a file."
        )
    dims = PROBLEMS[d.problem].params.spatial_dims
    if n_modes is not None and len(n_modes) not in (1, dims):
        raise ValueError(
            f"n_modes {list(n_modes)} has {len(n_modes)} entries but {d.problem} has {dims} spatial "
            "axes; give one entry per axis or a single one."
        )
    check_writable(d.cache_dir if d.cache_dir is not None else default_cache_dir(), "cache_dir")


def check_run(cfg: RunConfig) -> None:
    """Everything that can be checked before generating data or building a model: names, axes, device, paths.

    Raises ValueError (or FileNotFoundError) with one line naming the setting and the fix.
    """
    from ._device import resolve_device
    from .train.trainer import as_schedule

    as_schedule(cfg.train.precision)
    try:
        resolve_device(cfg.train.device)
    except RuntimeError as e:
        raise ValueError(f"device {cfg.train.device!r}: {e}; use auto, cpu or cuda[:N].") from None
    check_data(cfg.data, cfg.model.n_modes if cfg.model.model in ("fno", "tfno") else None)


# -- building a run ----------------------------------------------------------------------------


def generate_dataset(
    problem: str, resolution: int, n: int, seed: int, cache_dir=None, progress=True, params: dict | None = None
):
    """A generated data set by problem name (``lowprec.data.GENERATORS``), cached on disk."""
    from .data import GENERATORS as generators

    problem = problem_key(problem)
    if problem not in generators:
        hint = did_you_mean(problem, generators)
        raise ValueError(
            f"unknown problem {problem!r}.{hint} Generators: {', '.join(generators)}; or set data.path to a file."
        )
    return generators[problem](
        resolution=resolution, n=n, seed=seed, cache_dir=cache_dir, progress=progress, **(params or {})
    )


def build_datasets(cfg: DataConfig, progress: bool = True):
    """(train set, {name: test set})."""
    from .data import load_dataset

    if cfg.path is not None:
        if cfg.test_resolutions:
            raise ValueError(
                "test_resolutions applies to generated data; for files, give each test "
                "resolution its own file (--test-path A.h5 B.h5), or leave test_resolutions empty."
            )
        # For files, problem_params choose the loader's view (time-series windows, spatial_dims, grid).
        full = load_dataset(cfg.path, cfg.x_key, cfg.y_key, **cfg.problem_params)
        if not cfg.test_path:
            train, test = full.split(cfg.n_train, cfg.n_test)
            return train, {"test": test}
        tests = {}
        for path in cfg.test_path:
            test = load_dataset(path, cfg.x_key, cfg.y_key, **cfg.problem_params).subset(slice(0, cfg.n_test))
            # One file keeps the name "test"; several are named by grid as generated test sets are
            # (test_129), or by file where two share a grid.
            grid = tuple(test.x.shape[2:])
            name = "test_" + (str(grid[0]) if len(set(grid)) == 1 else "x".join(map(str, grid)))
            if len(cfg.test_path) == 1:
                name = "test"
            elif name in tests:
                name = f"test_{Path(path).stem}"
            if name in tests:
                raise ValueError(
                    f"test files {cfg.test_path} hold two of grid {grid} named {Path(path).stem}; "
                    "give each test file once, or rename one."
                )
            tests[name] = test
        return full.subset(slice(0, cfg.n_train)), tests
    train = generate_dataset(
        cfg.problem, cfg.resolution, cfg.n_train, cfg.data_seed, cfg.cache_dir, progress, cfg.problem_params
    )
    tests = {}
    # Test sets share a seed, so every resolution holds the same problems.
    for res in dict.fromkeys((cfg.resolution, *cfg.test_resolutions)):
        tests[f"test_{res}"] = generate_dataset(
            cfg.problem, res, cfg.n_test, cfg.data_seed + 1, cfg.cache_dir, progress, cfg.problem_params
        )
    return train, tests


def build_model(cfg: ModelConfig, train_set, normalize: bool = True) -> torch.nn.Module:
    """The configured solver for ``train_set``'s channels and dimension, with normalizers attached.

    The model is built by name through :mod:`lowprec.models.registry`, from the settings of
    ``cfg`` and of the data that its builder names (see ``MODEL_SETTINGS`` there).
    """
    from .data import UnitGaussianNormalizer
    from .models import Normalized
    from .models.registry import build_model as build_registered
    from .models.registry import model_kwargs

    settings = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name != "model"}
    if not hasattr(train_set, "x"):  # named inputs (DictDataset, e.g. GINO's coords / latent / x): no normalizers
        fields = train_set.fields
        latent, x = fields.get("latent"), fields.get("x")
        settings.update(
            out_channels=train_set.y.shape[1],
            in_channels=x.shape[1] if x is not None else 0,
            latent_channels=latent.shape[1] if latent is not None else 0,
            latent_resolution=latent.shape[-1] if latent is not None else None,
        )
        return build_registered(cfg.model, **model_kwargs(cfg.model, settings))
    dim, c_in, c_out = train_set.x.ndim - 2, train_set.x.shape[1], train_set.y.shape[1]
    settings.update(
        dim=dim,
        in_channels=c_in,
        out_channels=c_out,
        grid_endpoint=getattr(train_set, "grid", "nodes") != "periodic",
        sphere_grid=(getattr(train_set, "meta", None) or {}).get("sphere_grid"),
    )
    kwargs = model_kwargs(cfg.model, settings)
    if "n_modes" in kwargs:
        n_modes = cfg.n_modes * dim if len(cfg.n_modes) == 1 else cfg.n_modes
        if len(n_modes) != dim:
            raise ValueError(
                f"n_modes {cfg.n_modes} has {len(cfg.n_modes)} entries but the data has {dim} spatial "
                f"axes (shape {tuple(train_set.x.shape)}); give one entry per axis or a single one."
            )
        kwargs["n_modes"] = n_modes
    net = build_registered(cfg.model, **kwargs)
    if not normalize:
        return net
    return Normalized(
        net, UnitGaussianNormalizer(c_in).fit(train_set.x), UnitGaussianNormalizer(c_out).fit(train_set.y)
    )


def build_run(cfg: RunConfig, progress: bool = True):
    """(model, train set, test sets) for a configuration; the model is initialised from ``train.seed``."""
    import torch

    train_set, test_sets = build_datasets(cfg.data, progress)
    torch.manual_seed(cfg.train.seed)
    return build_model(cfg.model, train_set, cfg.data.normalize), train_set, test_sets
