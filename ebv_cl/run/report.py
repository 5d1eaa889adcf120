"""One comparison from several results folders of ``ebv-cl run`` (``ebv-cl report``).

A comparison is often run in pieces: some strategies in one process, more later, or on another machine. The
pieces compare only if they ran the same experiment: the same scenario, bank and training settings, with
different strategies or seeds. A setting that a later version of ebv-cl added is read as its default in an older
folder that does not name it (the default keeps the older behaviour), so pieces run before and after such an
addition still compare. ``merge_results`` checks exactly that from each folder's ``results.json`` and
``resolved_config.yaml`` and refuses, naming the folder and the setting, when they differ; ``report_markdown``
then renders the comparison table and the paired head-effect table of ``ebv_cl.run.results`` over all runs.
Each resolved config is read through the current schema first; ``bank.path`` (where the bank was loaded from) is not compared,
the bank itself is, by the digest in ``results.json``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

import yaml

from ..errors import ConfigError
from .config import RunConfig, config_from_dict
from .results import FORMAT, RESOLVED_CONFIG, read_results_json, results_markdown
from .strict import to_mapping

__all__ = ["merge_results", "report_markdown"]

# Settings that may differ between the pieces of one comparison: what ran, and how it was displayed or stored.
_FREE_KEYS = frozenset({"name", "strategies", "seeds", "progress", "checkpoint", "data_root"})


def _load(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    path = folder / "results.json" if folder.is_dir() else folder
    if not path.is_file():
        raise FileNotFoundError(f"results folder {str(folder)!r} has no results.json (expected an ebv-cl run --out folder)")
    results = read_results_json(path)
    if results.get("format") != FORMAT or not isinstance(results.get("runs"), list):
        raise ConfigError(f"{path} is not an ebv-cl results file of format {FORMAT}")
    config_path = path.parent / RESOLVED_CONFIG
    config = yaml.safe_load(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    return results, config or {}


def _with_defaults(cls: type, mapping: dict[str, Any]) -> dict[str, Any]:
    """``mapping`` with each field of the dataclass ``cls`` that it lacks set to the field's default (recursively
    into fields whose default is itself a dataclass, such as ``bank``); keys ``cls`` does not know are kept."""
    out = dict(mapping)
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default: Any = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            continue
        if f.name not in out:
            out[f.name] = to_mapping(default)
        elif dataclasses.is_dataclass(default) and isinstance(out[f.name], dict):
            out[f.name] = _with_defaults(type(default), out[f.name])
    return out


def _bank_identity(bank: dict[str, Any] | None) -> dict[str, Any] | None:
    """A bank record less its measured ``coherence`` when it carries the vectors' ``sha256``: the hash already
    names the vectors, and the coherence computed from them may differ in its last bits between versions."""
    if not isinstance(bank, dict) or "sha256" not in bank:
        return bank
    return {k: v for k, v in bank.items() if k != "coherence"}


def _settings(config: dict[str, Any]) -> dict[str, Any]:
    try:  # settings added to the schema since the folder was written take their defaults
        config = config_from_dict(config, validate=False).to_dict() if config else config
    except (ConfigError, TypeError, ValueError):
        config = _with_defaults(RunConfig, config)  # e.g. a setting retired since: fill what is missing only
    out = {k: v for k, v in config.items() if k not in _FREE_KEYS}
    if isinstance(out.get("bank"), dict):
        out["bank"] = {k: v for k, v in out["bank"].items() if k != "path"}
    return out


def merge_results(folders: Sequence[str | Path]) -> tuple[str, list[dict[str, Any]]]:
    """The runs of several results folders of one experiment, and a title.

    Args:
        folders: Output folders of ``ebv-cl run`` (or paths to their ``results.json``).

    Returns:
        ``(title, runs)``: the first folder's run name, and every run record.

    Raises:
        FileNotFoundError: if a folder has no ``results.json``.
        ConfigError: on a malformed results file, folders whose scenario, bank or training settings differ (the
            message names the folder and the setting; the bank and its settings are compared only between folders
            whose heads used a bank), or a strategy and seed found in two folders.
    """
    if not folders:
        raise ValueError("folders must name at least one results folder, got none")
    first_results, first_config = _load(Path(folders[0]))
    reference = {"scenario": (folders[0], first_results.get("scenario")), "bank": None}
    bank_settings: tuple[str | Path, Any] | None = None  # the first folder whose runs used a bank, and its settings
    runs: list[dict[str, Any]] = []
    seen: dict[tuple[str, int], str] = {}
    for folder in folders:
        results, config = _load(Path(folder))
        if reference["bank"] is None and results.get("bank") is not None:
            reference["bank"] = (folder, results.get("bank"))
        for key in ("scenario", "bank"):
            if reference[key] is None:
                continue
            origin, theirs = reference[key]
            mine = results.get(key)
            if key == "bank":
                mine, theirs = _bank_identity(mine), _bank_identity(theirs)
            if mine is not None and theirs is not None and mine != theirs:
                raise ConfigError(
                    f"{folder}: its {key} {results.get(key)} differs from {origin}'s {reference[key][1]}; "
                    "a report compares runs of one experiment"
                )
        a, b = _settings(first_config), _settings(config)
        # the bank settings matter only to folders whose heads used a bank: those are compared with each other
        a.pop("bank", None)
        mine_bank = b.pop("bank", None)
        if results.get("bank") is not None:
            if bank_settings is None:
                bank_settings = (folder, mine_bank)
            elif mine_bank != bank_settings[1]:
                raise ConfigError(f"{folder}: settings differ from {bank_settings[0]} (bank: {bank_settings[1]!r} vs "
                                  f"{mine_bank!r}); a report compares runs of one experiment")
        differing = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        if differing:
            detail = ", ".join(f"{k}: {a.get(k)!r} vs {b.get(k)!r}" for k in differing)
            raise ConfigError(f"{folder}: settings differ from {folders[0]} ({detail}); a report compares runs of one experiment")
        for run in results["runs"]:
            key = (run["strategy"], run["seed"])
            if key in seen:
                raise ConfigError(f"{run['strategy']} seed {run['seed']} is in both {seen[key]} and {folder}")
            seen[key] = str(folder)
            runs.append(run)
    return str(first_results.get("name") or Path(folders[0]).name), runs


def _canonical_order(runs: list[dict[str, Any]], baseline: str) -> list[dict[str, Any]]:
    """Runs sorted by method (registry order), then head (the baseline first, then registry order), then seed."""
    from ..continual.strategies.names import method_names
    from ..heads import list_heads

    methods = {m: i for i, m in enumerate(method_names())}
    heads = {h: i for i, h in enumerate([baseline, *[h for h in list_heads() if h != baseline]])}
    return sorted(runs, key=lambda r: (methods.get(r["method"], len(methods)), r["method"],
                                       heads.get(r["head"], len(heads)), r["head"], r["seed"]))


def report_markdown(folders: Sequence[str | Path], *, baseline: str = "fc") -> str:
    """The Markdown comparison of the merged folders, rows by method then head (``baseline`` first): the
    comparison table, (few-shot streams) the per-session table, then the head-effect table."""
    title, runs = merge_results(folders)
    scenario = _load(Path(folders[0]))[0].get("scenario") or {}
    return results_markdown(_canonical_order(runs, baseline), title=title, baseline=baseline,
                            sessions=scenario.get("kind") == "few_shot")
