"""The run config of ``ebv-cl run``: YAML, then typed dataclasses that reject unknown keys, then CLI overrides.

A config file is one YAML mapping with these top-level keys (all optional except ``scenario`` and
``strategies``; defaults in brackets)::

    name: my-run                 # label of the run, used in the default output folder [null]
    include: base.yaml           # another config file (path relative to this one) this one extends [none]
    scenario: split_fashion_mnist   # a catalogue name (scenarios/<name>.yaml) or an inline mapping;
                                    # a mapping may say `include: <name>` and override some keys.
                                    # The keys themselves belong to ebv_cl.continual.scenarios.
    backbone: {name: mlp, options: {}}   # a registered backbone name (or just the name as a string)
    strategies:                  # one entry per strategy, compared side by side:
      - ebv+der                  #   a combined name head+method, a short head name (method: replay
                                 #   when buffer_size > 0, else naive),
      - fc_er_reservoir          #   a catalogue name (strategies/<name>.yaml),
      - {head: ebv, method: der, method_options: {alpha: 0.1, beta: 0.5}}   # or a mapping
    seeds: [0]                   # every strategy runs once per seed
    epochs: 1                    # epochs per experience
    batch_size: 32               # training minibatch
    eval_batch_size: 256
    optimizer: sgd               # sgd | adam
    lr: 0.01
    momentum: 0.9                # sgd only
    weight_decay: 0.0
    buffer_size: 200             # replay memory in samples, the same for every strategy that uses one
    bank: {n: null, dim: null, method: auto, seed: 0, time_budget: 10.0, max_steps: null, path: null}
                                 # the EBV bank shared by every strategy and seed of the run: n defaults to
                                 # the scenario's number of classes, dim to max(feature size, min(n, 1024));
                                 # path loads a saved bank instead of generating one; max_steps stops the
                                 # optimisation by steps alone (time_budget ignored): the same bank on any
                                 # machine; with a time budget the first bank made for the config is stored
                                 # in $EBV_CL_CACHE/banks and reused, so runs repeat on one machine
    device: cpu                  # cpu | cuda | cuda:N | auto
    threads: null                # CPU threads torch may use during the run (null: torch's default); 1 is
                                 # much faster for small models on a busy machine
    data_root: null              # dataset root; null means $EBV_CL_DATA
    progress: true               # progress bars while training
    checkpoint: true             # save a checkpoint after every experience (needed for --resume)
    loggers: []                  # Avalanche loggers: text, csv, tensorboard, wandb (under <out>/logs/)
    cpus_per_job: 1              # with --workers: CPUs Ray reserves for each (strategy, seed) job [1]
    gpus_per_job: 0              # with --workers: GPUs (may be fractional) Ray reserves for each job [0]

A strategy mapping has the keys ``head``, ``method`` (null or absent: ``replay`` when ``buffer_size > 0``, else
``naive``), ``name`` (its label in the results, default
``head+method``), ``head_options`` and ``method_options`` (handed to the strategy factory, which validates them),
``lr`` (this strategy's learning rate; null: the run's ``lr``, for protocols that tune it per method), and may
start from a catalogue entry with ``include: <name>``. Everything else, the replay ``buffer_size`` above all,
is shared by every strategy of the run so that they compare on equal terms.

Resolution order: the file, its ``include``, the catalogue entries it names, then ``key.sub=value`` overrides
(``ebv-cl run CONFIG epochs=2 strategies.0.method=der``), then the strict check. The resolved config
(``resolved_config.yaml`` beside the results) has every name expanded, so it alone reproduces the run.
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

import yaml

from ..continual.strategies.names import default_method
from ..continual.strategies.spec import StrategySpec
from ..continual.strategies.training import TrainingSettings
from ..errors import ConfigError
from .catalogue import load_entry, read_yaml
from .overrides import apply_overrides
from .strict import from_mapping, to_mapping

__all__ = [
    "BackboneConfig",
    "BankConfig",
    "StrategyConfig",
    "RunConfig",
    "load_config",
    "config_from_dict",
    "resolve_raw",
    "dump_config",
]


@dataclass(frozen=True)
class BackboneConfig:
    """The feature extractor shared by every strategy: a registered backbone name and its options.

    Attributes:
        name: A registered backbone: ``mlp``, ``small_cnn``, ``resnet18``, ``resnet32`` (a config may give just
            the name as a string).
        options: The backbone's options (below, per backbone).
    """

    name: str = "mlp"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BankConfig:
    """The EBV bank of the run: generated once (or loaded from ``path``) and shared by every strategy.

    Attributes:
        n: Vectors in the bank; ``null``: the scenario's number of classes.
        dim: Vector size; ``null``: ``max(feature size, min(n, 1024))``, i.e. an orthogonal bank of one
            dimension per class up to 1,024 classes, never below the backbone's feature size.
        method: Generation method (``ebv-cl bank generate --help`` lists them; ``auto``: the best that applies).
        seed: Seed of the generation.
        time_budget: Seconds the iterative methods may run (``null``: the method's own default); the first bank
            made for this config is stored in ``$EBV_CL_CACHE/banks`` and reused, so runs repeat on one machine.
        max_steps: Stop the iterative methods by steps alone (``time_budget`` is then ignored): the same bank on
            any machine.
        path: Load this bank file instead of generating one.
    """

    n: int | None = None
    dim: int | None = None
    method: str = "auto"
    seed: int = 0
    time_budget: float | None = 10.0
    max_steps: int | None = None
    path: str | None = None


@dataclass(frozen=True)
class StrategyConfig:
    """One strategy: a head under a training method, with their options.

    Attributes:
        head: A registered head (the per-head table below lists them and their options).
        method: A registered method (the per-method table below); ``null``: ``replay`` when
            ``buffer_size > 0``, else ``naive``.
        name: Its label in the results (default ``head+method``).
        head_options: The head's options (below, per head).
        method_options: The method's options (below, per method).
        lr: This strategy's learning rate; ``null``: the run's ``lr``.
    """

    head: str
    method: str | None = None
    name: str | None = None
    head_options: dict[str, Any] = field(default_factory=dict)
    method_options: dict[str, Any] = field(default_factory=dict)
    lr: float | None = None

    @property
    def label(self) -> str:
        """The strategy's name in the results (``name`` or ``head+method``)."""
        return self.name or f"{self.head}+{self.method}"


@dataclass(frozen=True, kw_only=True)
class _RunSubject:
    """What a run compares: its first keys (a base class only so that ``resolved_config.yaml`` lists them before
    the training settings, as it always has).

    Attributes:
        name: Label of the run, used in the default output folder.
        scenario: A catalogue name (``scenarios/<name>.yaml``) or a mapping (below), which may start with
            ``include: <name>``.
        backbone: The feature extractor (below); a string is its name.
        strategies: One entry per strategy, compared side by side: ``head+method``, a short head name, a
            ``strategies/<name>.yaml`` catalogue name, or a mapping (below).
        seeds: Every strategy runs once per seed (the seed draws the class order, subsamples and initialisation).
    """

    name: str | None = None
    scenario: dict[str, Any]
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    strategies: list[StrategyConfig]
    seeds: list[int] = field(default_factory=lambda: [0])


@dataclass(frozen=True, kw_only=True)
class RunConfig(TrainingSettings, _RunSubject):
    """A whole ``ebv-cl run`` job; see the module docstring for the resolution order.

    The training settings (``epochs`` ... ``buffer_size``) are ``TrainingSettings``, shared with every
    strategy's ``StrategySpec``; ``specs`` holds those specs, one per strategy, built and checked once here.

    Attributes:
        bank: The EBV bank shared by every strategy and seed (below).
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
        threads: CPU threads torch may use during the run (``null``: torch's default; 1 is fastest for small
            models on a busy machine).
        data_root: Dataset root; ``null``: ``$EBV_CL_DATA``.
        progress: Progress bars while training.
        checkpoint: Save a checkpoint after every experience (needed for ``--resume``).
        loggers: Avalanche's loggers, some of ``text``, ``csv``, ``tensorboard``, ``wandb``, writing under
            ``<out>/logs/`` (``tensorboard`` and ``wandb`` need their packages installed).
        cpus_per_job: With ``ebv-cl run --workers``: CPUs Ray reserves for each (strategy, seed) job.
        gpus_per_job: With ``--workers``: GPUs (may be fractional) Ray reserves for each job.
    """

    bank: BankConfig = field(default_factory=BankConfig)
    device: str = "cpu"
    threads: int | None = None
    data_root: str | None = None
    progress: bool = True
    checkpoint: bool = True
    loggers: list[str] = field(default_factory=list)
    cpus_per_job: float = 1.0
    gpus_per_job: float = 0.0
    specs: tuple[Any, ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        super().__post_init__()
        default = default_method(self.buffer_size)
        filled = [s if s.method is not None else replace(s, method=default) for s in self.strategies]
        object.__setattr__(self, "strategies", filled)
        _check_values(self)
        object.__setattr__(self, "specs", tuple(_spec(self, i, s) for i, s in enumerate(filled)))

    def to_dict(self) -> dict[str, Any]:
        """The plain mapping form (``config_from_dict(c.to_dict()) == c``)."""
        return to_mapping(self)


def _spec(c: RunConfig, i: int, s: StrategyConfig) -> Any:
    """Strategy ``s``'s ``StrategySpec``: its head, method and options with the run's training settings."""
    settings = c.training() | ({"lr": s.lr} if s.lr is not None else {})
    try:
        return StrategySpec(head=s.head, method=s.method, head_options=dict(s.head_options),
                            method_options=dict(s.method_options), **settings)
    except (ConfigError, ValueError, TypeError) as exc:
        raise ConfigError(f"strategies[{i}] ({s.label}): {exc}") from None


def _check_values(c: RunConfig) -> None:
    for seed in c.seeds:
        if not 0 <= seed < 2**32:
            raise ConfigError(f"seeds = {c.seeds}: expected ints in [0, 2**32), got {seed}")
    if c.bank.seed < 0:
        raise ConfigError(f"bank.seed = {c.bank.seed}: expected an int >= 0")
    if not c.seeds:
        raise ConfigError("seeds = []: expected at least one seed")
    if len(set(c.seeds)) != len(c.seeds):
        raise ConfigError(f"seeds = {c.seeds}: expected distinct seeds")
    if not c.strategies:
        raise ConfigError("strategies = []: expected at least one strategy")
    labels = [s.label for s in c.strategies]
    for label in labels:
        if labels.count(label) > 1:
            raise ConfigError(f"strategy {label!r} appears twice in strategies; give one of them a distinct 'name'")
    for key, value in {"bank.n": c.bank.n, "bank.dim": c.bank.dim, "threads": c.threads,
                       "bank.max_steps": c.bank.max_steps}.items():
        if value is not None and value < 1:
            raise ConfigError(f"{key} = {value}: expected an int >= 1 or null")
    for key, value in {"cpus_per_job": c.cpus_per_job, "gpus_per_job": c.gpus_per_job}.items():
        if value < 0 or value != value:
            raise ConfigError(f"{key} = {value}: expected a number >= 0")
    if c.bank.time_budget is not None and not (math.isfinite(c.bank.time_budget) and c.bank.time_budget > 0):
        raise ConfigError(f"bank.time_budget = {c.bank.time_budget}: expected a finite number > 0 or null")


def _merge(base: Any, over: Any) -> Any:
    """Deep merge: mappings merge key by key, anything else in ``over`` replaces ``base``."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = _merge(base.get(key), value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(over)


def _resolve_entry(kind: str, value: Any, where: str, depth: int = 0) -> Any:
    """Expand a catalogue name, or a mapping with ``include: <name>``, into a plain mapping."""
    if depth > 8:
        raise ConfigError(f"{where}: catalogue includes nest deeper than 8 levels (an include cycle?)")
    if isinstance(value, str):
        return _resolve_entry(kind, {"include": value}, where, depth + 1)
    if isinstance(value, dict) and "include" in value:
        rest = {k: v for k, v in value.items() if k != "include"}
        base = _resolve_entry(kind, load_entry(kind, value["include"]), where, depth + 1)
        return _merge(base, rest)
    return value


def _expand_preset(scenario: Any) -> Any:
    """A scenario mapping with ``preset: <name>`` expanded into the preset's keys (the others override them)."""
    if not isinstance(scenario, dict) or "preset" not in scenario:
        return scenario
    from ..continual.scenarios.presets import preset_spec

    rest = {k: v for k, v in scenario.items() if k != "preset"}
    return preset_spec(scenario["preset"], **rest)


def _resolve_strategy(value: Any, where: str) -> Any:
    if isinstance(value, str):
        from .catalogue import catalogue_names

        if value in catalogue_names("strategies"):
            return _resolve_entry("strategies", value, where)
        head, method = _split_strategy_name(value, where)
        return {"head": head} if method is None else {"head": head, "method": method}
    return _resolve_entry("strategies", value, where)


def _split_strategy_name(text: str, where: str) -> tuple[str, str | None]:
    from ..continual.strategies import parse_strategy_name

    try:
        return parse_strategy_name(text)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where} = {text!r} is neither a strategies/ catalogue entry nor a head+method name: {exc}")


def resolve_raw(data: dict[str, Any], *, base_dir: Path | None = None, depth: int = 0) -> dict[str, Any]:
    """Expand the top-level ``include``, the scenario and every strategy name into plain mappings.

    Raises:
        ConfigError: on an unknown catalogue name or an include cycle.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"a run config must be a mapping of keys, got {type(data).__name__}")
    if "include" in data:
        if depth > 8:
            raise ConfigError("config includes nest deeper than 8 levels (an include cycle?)")
        target = data["include"]
        if not isinstance(target, str):
            raise ConfigError(f"include = {target!r}: expected the path of a config file (str)")
        path = (base_dir or Path.cwd()) / target
        base = resolve_raw(read_yaml(path, what="included config"), base_dir=path.parent, depth=depth + 1)
        data = _merge(base, {k: v for k, v in data.items() if k != "include"})
    out = dict(data)
    if "scenario" in out:
        out["scenario"] = _expand_preset(_resolve_entry("scenarios", out["scenario"], "scenario"))
    if isinstance(out.get("strategies"), list):
        out["strategies"] = [_resolve_strategy(s, f"strategies[{i}]") for i, s in enumerate(out["strategies"])]
    elif isinstance(out.get("strategies"), str):
        out["strategies"] = [_resolve_strategy(out["strategies"], "strategies")]
    if isinstance(out.get("backbone"), str):
        out["backbone"] = {"name": out["backbone"]}
    return out


def config_from_dict(
    data: dict[str, Any], *, overrides: Iterable[str] = (), base_dir: Path | None = None, validate: bool = True
) -> RunConfig:
    """Build a ``RunConfig`` from a parsed YAML mapping, applying ``overrides`` after every include.

    Args:
        data: The parsed config mapping.
        overrides: ``key.sub=value`` strings, applied in order.
        base_dir: Folder that a top-level ``include`` is relative to (default: the current directory).
        validate: Also check the scenario, heads, methods and backbone against their registries.

    Returns:
        The typed, fully resolved config.

    Raises:
        ConfigError: on an unknown key, name or type anywhere in the config.
    """
    raw = resolve_raw(data, base_dir=base_dir)
    overrides = list(overrides)
    if overrides:
        raw = resolve_raw(apply_overrides(raw, overrides), base_dir=base_dir)
    config = from_mapping(RunConfig, raw, section="top level")
    if validate:
        from .validate import validate_components

        validate_components(config)
    return config


def load_config(path: str | os.PathLike, *, overrides: Iterable[str] = (), validate: bool = True) -> RunConfig:
    """Read and resolve the config file at ``path`` (see ``config_from_dict``).

    Raises:
        FileNotFoundError: if the file does not exist.
        ConfigError: if it is not valid YAML or not a valid config.
    """
    path = Path(path)
    data = read_yaml(path, what="config")
    if data is None:
        raise ConfigError(f"config file {str(path)!r} is empty; it needs at least 'scenario' and 'strategies'")
    return config_from_dict(data, overrides=overrides, base_dir=path.parent, validate=validate)


def dump_config(config: RunConfig) -> str:
    """The resolved config as YAML text (``load_config`` of it gives back an equal config)."""
    header = "# resolved by ebv-cl: every include and name expanded; `ebv-cl run` of this file repeats the run\n"
    return header + yaml.safe_dump(config.to_dict(), sort_keys=False, default_flow_style=None)
