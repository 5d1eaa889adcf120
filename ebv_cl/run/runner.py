"""The runner of ``ebv-cl run``: every strategy under every seed on one scenario, results written as they finish.

Seed by seed (so only one stream is in memory and every strategy is compared early), for each strategy, inside
``local_rng(seed)`` (the caller's random generators are restored after): build the scenario (once per seed),
the backbone and the strategy; then for each experience train on
it, count the correct test predictions per class on every experience seen so far, record the trainable head
size and the wall time (training plus evaluation), and write a checkpoint. A finished run becomes one record of
``results.json`` (``results.py``) and its checkpoint is deleted. With ``resume=True`` finished runs are skipped
and the run that was in progress continues from its last checkpoint, with the same random states, so the
figures equal those of an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import pickle
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from ..data.sharing import shared_datasets
from ..errors import DivergenceError, OutputError
from .checkpoints import checkpoint_path, load_checkpoint, remove_checkpoint, save_checkpoint
from .components import Components, default_components
from .config import RunConfig, StrategyConfig, dump_config
from .metrics import summarize
from .progress import ProgressBars
from .results import ResultsFolder
from .seeding import capture_rng, local_rng

__all__ = ["run_config", "resolve_device", "count_correct"]

def needs_bank(config: RunConfig) -> bool:
    """Whether a head of the run takes its classifier from the EBV bank (its registry trait ``needs_bank``)."""
    from ..heads import HEADS

    return any(HEADS.traits(s.head).get("needs_bank") for s in config.strategies)


def resolve_device(name: str) -> torch.device:
    """``"auto"`` becomes ``cuda`` when available, else ``cpu``; other names are checked by torch.

    Raises:
        ValueError: on an unknown device name or a CUDA device on a machine without one.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"device = {name!r} is not a valid torch device: {exc}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device = {name!r} but CUDA is not available on this machine; use device=cpu")
    return device


def count_correct(
    model: torch.nn.Module,
    dataset: Any,
    *,
    n_classes: int,
    batch_size: int,
    device: torch.device,
    predict: Callable[[torch.nn.Module, torch.Tensor], torch.Tensor],
) -> tuple[np.ndarray, np.ndarray]:
    """Correct predictions and test samples per class id on ``dataset`` (items ``(x, y, ...)``).

    Returns:
        ``(correct, total)``, both int64 arrays of shape ``(n_classes,)``.
    """
    if hasattr(dataset, "eval") and callable(dataset.eval):
        dataset = dataset.eval()
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=0, generator=torch.Generator()
    )
    correct = torch.zeros(n_classes, dtype=torch.long)
    total = torch.zeros(n_classes, dtype=torch.long)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for batch in loader:
            x, y = batch[0].to(device), torch.as_tensor(batch[1]).long().cpu()
            pred = predict(model, x).cpu()
            total += torch.bincount(y, minlength=n_classes)
            correct += torch.bincount(y[pred == y], minlength=n_classes)
    model.train(was_training)
    return correct.numpy(), total.numpy()


class _Runner:
    """State shared by the runs of one ``run_config`` call (scenario cache, bank, output folder)."""

    def __init__(
        self, config: RunConfig, folder: ResultsFolder, parts: Components, log: Callable[[str], None], *,
        progress: bool = True,
    ) -> None:
        self.config = config
        self.progress = progress
        self.folder = folder
        self.parts = parts
        self.log = log
        self.device = resolve_device(config.device)
        self._scenarios: dict[int, Any] = {}
        self._bank: Any = None
        self.specs = {s.label: spec for s, spec in zip(config.strategies, config.specs)}

    def scenario(self, seed: int) -> Any:
        """The stream of ``seed``; only the latest seed's stream is kept (runs go seed by seed)."""
        if seed not in self._scenarios:
            self._scenarios.clear()
            with local_rng(seed):
                spec = dict(self.config.scenario)
                root = self.config.data_root
                self._scenarios[seed] = self.parts.build_scenario(spec, seed=seed, root=root)
        return self._scenarios[seed]

    def backbone(self, built: Any) -> torch.nn.Module:
        b = self.config.backbone
        return self.parts.create_backbone(b.name, input_shape=tuple(built.input_shape), **b.options)

    def bank(self, built: Any, feature_dim: int) -> Any:
        """The run's bank: loaded from ``bank.path`` or the output folder, else generated once and saved there."""
        if self._bank is not None or not needs_bank(self.config):
            return self._bank  # no head of the run needs one (hadamard takes its capacity from the stream)
        from ..bank import EBVBank

        cfg = self.config.bank
        if cfg.path is None and cfg.n is not None and cfg.n < built.n_classes:
            from ..errors import ConfigError

            raise ConfigError(
                f"bank.n = {cfg.n} is smaller than the scenario's {built.n_classes} classes; "
                "use a larger bank (bank.n) or leave it null"
            )
        saved = self.folder.path / "bank.ebv"
        if cfg.path is not None:
            self._bank = EBVBank.load(cfg.path)
        elif saved.exists():
            self._bank = EBVBank.load(saved)
        else:
            from ..bank import default_bank_dim

            n = cfg.n or built.n_classes
            dim = cfg.dim or default_bank_dim(int(n), int(feature_dim))
            from ..validation import check_dense_bank_size

            check_dense_bank_size(n, dim, method=cfg.method, name="bank.n/bank.dim")
            self.log(f"generating the EBV bank: n={n}, dim={dim}, method={cfg.method}")
            self._bank = self._generate_bank(n, dim)
            self.folder._write_file(saved, self._bank.save)
        meta = self._bank.metadata()
        self.folder.context["bank"] = {k: meta[k] for k in ("n", "dim", "method", "seed", "coherence")}
        self.folder.context["bank"]["sha256"] = self._bank.sha256()
        if self._bank.n < built.n_classes:
            from ..errors import ConfigError

            raise ConfigError(
                f"bank.n = {self._bank.n} is smaller than the scenario's {built.n_classes} classes; "
                "use a larger bank (bank.n) or leave it null"
            )
        return self._bank

    def _generate_bank(self, n: int, dim: int) -> Any:
        """Generate the run's bank so that the same config gives the same bank.

        With ``bank.max_steps`` the optimisation is stopped by steps alone (its schedule then depends on the step
        only), so the bank is bit-identical on any machine. With a time budget alone, where the machine's speed
        decides when it stops, the first bank generated for this ``(n, dim, method, seed, time_budget)`` is stored
        in the cache folder (``$EBV_CL_CACHE/banks``) and every later run with that config reuses it.
        """
        from ..bank import EBVBank
        from ..data.roots import cache_dir

        cfg = self.config.bank
        if cfg.max_steps is not None:
            with local_rng(cfg.seed):
                return EBVBank.generate(n, dim, method=cfg.method, seed=cfg.seed, max_steps=cfg.max_steps)
        key = json.dumps({"n": n, "dim": dim, "method": cfg.method, "seed": cfg.seed, "time_budget": cfg.time_budget,
                          "format": 1}, sort_keys=True)
        stored = cache_dir() / "banks" / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.ebv"
        if stored.is_file():
            try:
                bank = EBVBank.load(stored)
            except (OSError, ValueError) as exc:
                self.log(f"warning: the stored bank {str(stored)!r} is unreadable ({exc}); generating a new one")
            else:
                if (bank.n, bank.dim) == (n, dim):
                    self.log(f"reusing the EBV bank generated earlier for this config: {stored}")
                    return bank
        with local_rng(cfg.seed):
            bank = EBVBank.generate(n, dim, method=cfg.method, seed=cfg.seed, time_budget=cfg.time_budget)
        try:
            bank.save(stored)
        except OSError as exc:
            self.log(f"warning: could not store the bank in {str(stored)!r} ({exc}); a later run will generate "
                     "its own (set EBV_CL_CACHE to a writable folder)")
        return bank

    def build(self, s: StrategyConfig, seed: int, built: Any) -> Any:
        backbone = self.backbone(built)
        strategy, _model = self.parts.build_from_spec(
            self.specs[s.label],
            backbone=backbone,
            n_classes_total=built.n_classes,
            bank=self.bank(built, int(backbone.feature_dim)),
            seed=seed,
            device=self.device,
            plugins=[ProgressBars(f"{s.label} seed {seed}", enabled=self.progress)],
            **({"evaluator": self.evaluator(s, seed)} if self.config.loggers else {}),
        )
        return strategy

    def evaluator(self, s: StrategyConfig, seed: int) -> Any:
        """Avalanche's evaluation plugin with the config's loggers, writing under ``<out>/logs/``."""
        from ..continual.loggers import make_evaluator

        return make_evaluator(self.config.loggers, log_dir=self.folder.path / "logs" / f"{s.label}-seed{seed}",
                              run_name=f"{s.label}-seed{seed}", project=self.config.name or "ebv-cl")

    def evaluate(self, model: torch.nn.Module, built: Any, *, upto: int) -> tuple[np.ndarray, np.ndarray]:
        """Correct predictions and test samples per class over the test sets of experiences ``0..upto``."""
        correct = np.zeros(built.n_classes, dtype=np.int64)
        total = np.zeros(built.n_classes, dtype=np.int64)
        for j in range(upto + 1):
            cj, tj = count_correct(
                model,
                built.benchmark.test_stream[j].dataset,
                n_classes=built.n_classes,
                batch_size=self.config.eval_batch_size,
                device=self.device,
                predict=self.parts.predict,
            )
            correct += cj
            total += tj
        return correct, total

    @staticmethod
    def _datasets(built: Any) -> dict[str, Any]:
        """The stream's datasets, which checkpoints name instead of copying (``ebv_cl.data.sharing``)."""
        named = (("train", getattr(built, "train_dataset", None)), ("test", getattr(built, "test_dataset", None)))
        return {k: v for k, v in named if v is not None}

    def identity(self, s: StrategyConfig, seed: int) -> dict[str, Any]:
        """What a checkpoint of ``s`` under ``seed`` in this run must carry to be resumed."""
        return {"strategy": s.label, "seed": int(seed), "config_sha256": self.folder.digest}

    def _checkpoint(
        self, path: Path, strategy: Any, state: dict[str, Any], *, label: str, built: Any,
        identity: dict[str, Any] | None = None,
    ) -> None:
        """Save a checkpoint; an object that cannot be pickled is logged, not fatal (the run goes on, it just
        cannot be resumed); a write failure (full disk, read-only folder) stops the run with ``OutputError``."""
        evaluator = getattr(strategy, "evaluator", None)
        loggers = list(getattr(evaluator, "loggers", None) or [])
        try:
            if loggers:
                evaluator.loggers = []  # loggers hold open files and writers; they are rebuilt on resume
            with shared_datasets(self._datasets(built)):
                save_checkpoint(path, strategy=strategy, state=state, identity=identity)
        except (OSError, RuntimeError) as exc:
            remove_checkpoint(path)
            raise OutputError(
                f"cannot write the checkpoint {str(path)!r}: {getattr(exc, 'strerror', None) or exc}; the results "
                "written before are intact (free space or fix permissions, then rerun with --resume)"
            ) from None
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            remove_checkpoint(path)
            self.log(f"[{label}] warning: checkpoint not saved ({type(exc).__name__}: {exc}); "
                     "this run cannot be resumed if interrupted")
        finally:
            if loggers:
                evaluator.loggers = loggers

    def run_one(self, s: StrategyConfig, seed: int, *, resume: bool) -> dict[str, Any]:
        built = self.scenario(seed)
        ckpt = checkpoint_path(self.folder.checkpoint_dir, strategy=s.label, seed=seed)
        with shared_datasets(self._datasets(built)):
            payload = (load_checkpoint(ckpt, map_location=self.device, expect=self.identity(s, seed))
                       if resume else None)
        if payload is None:
            remove_checkpoint(ckpt)
            state: dict[str, Any] = {"next_experience": 0, "correct": [], "total": None, "head_params": [],
                                     "wall_time_s": 0.0, "rng": None}
        else:
            state = payload["state"]
            self.log(f"[{s.label} seed {seed}] resuming after experience {state['next_experience']}")
        n_exp = len(built.classes_per_experience)
        with local_rng(seed, state=state["rng"]):
            strategy = self.build(s, seed, built) if payload is None else payload["strategy"]
            for plugin in getattr(strategy, "plugins", []):
                if isinstance(plugin, ProgressBars):
                    plugin.enabled = self.progress  # this process's choice, not the checkpointed one
            if payload is not None and self.config.loggers:
                strategy.evaluator.loggers = self.evaluator(s, seed).loggers
            for i in range(state["next_experience"], n_exp):
                start = time.perf_counter()
                strategy.train(built.benchmark.train_stream[i])
                model = strategy.model
                _check_finite(strategy, model, where=f"{s.label} seed {seed}, experience {i + 1}")
                correct, total = self.evaluate(model, built, upto=i)
                state["wall_time_s"] += time.perf_counter() - start
                if self.config.loggers:  # Avalanche's metrics for its loggers; ebv-cl's figures are above, and
                    with torch.random.fork_rng(devices=[]):  # the RNG stream stays that of a run without loggers
                        strategy.eval(built.benchmark.test_stream[: i + 1])
                state["correct"].append(correct.tolist())
                state["total"] = total.tolist()
                state["head_params"].append(int(self.parts.head_param_count(model)))
                state["next_experience"] = i + 1
                seen = correct.sum() / max(1, total.sum())
                self.log(f"[{s.label} seed {seed}] experience {i + 1}/{n_exp}: accuracy on seen classes {seen:.2%}")
                if self.config.checkpoint and i + 1 < n_exp:
                    state["rng"] = capture_rng()
                    self._checkpoint(ckpt, strategy, state, label=f"{s.label} seed {seed}", built=built,
                                     identity=self.identity(s, seed))
        record = {"strategy": s.label, "head": s.head, "method": s.method, "seed": seed,
                  "classes_per_experience": [list(map(int, c)) for c in built.classes_per_experience],
                  "class_order": [int(c) if isinstance(c, (int, np.integer)) else c for c in built.original_labels]}
        record.update(summarize(np.array(state["correct"]), np.array(state["total"]), built.classes_per_experience))
        record["trainable_head_params"] = state["head_params"]
        record["wall_time_s"] = round(float(state["wall_time_s"]), 3)
        return record


def failed_record(s: StrategyConfig, seed: int, exc: BaseException) -> dict[str, Any]:
    """The ``results.json`` record of a strategy run that diverged: who, and why; no figures."""
    return {"strategy": s.label, "head": s.head, "method": s.method, "seed": int(seed), "failed": str(exc)}


def _check_finite(strategy: Any, model: torch.nn.Module, *, where: str) -> None:
    """Raise ``DivergenceError`` if the last training loss or any parameter is NaN or infinite (buffers may hold
    infinite sentinels on purpose, and a NaN in a buffer such as NCM's class means comes from NaN parameters).

    A diverged model still predicts (argmax of NaN logits is column 0), so without this check its figures would
    read as a result.
    """
    loss = getattr(strategy, "loss", None)
    if isinstance(loss, torch.Tensor) and loss.numel() and not bool(torch.isfinite(loss.detach()).all()):
        raise DivergenceError(f"{where}: the training loss is {float(loss.detach().reshape(-1)[0])}; "
                              "training diverged (learning rate too high, or NaN/inf in the inputs)")
    for name, t in model.named_parameters():
        if t.is_floating_point() and not bool(torch.isfinite(t.detach()).all()):
            raise DivergenceError(f"{where}: parameter {name!r} holds NaN or infinite values; training diverged "
                                  "(learning rate too high, or NaN/inf in the inputs)")


def _environment(device: torch.device, threads: int | None) -> dict[str, Any]:
    import platform

    from .. import __version__

    return {
        "ebv_cl": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "threads": threads if threads is not None else torch.get_num_threads(),
    }


@contextlib.contextmanager
def run_environment(threads: int | None, log: Callable[[str], None]) -> Iterator[None]:
    """Run the body with ``threads`` torch CPU threads (``None``: unchanged; restored after) and report every
    warning raised inside it through ``log`` (each distinct one once), as the runner and every job executor do."""
    saved = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            try:
                yield
            finally:
                _report_warnings(caught, log)
    finally:
        torch.set_num_threads(saved)


def _report_warnings(caught: list[warnings.WarningMessage], log: Callable[[str], None]) -> None:
    """Log each distinct warning once; Avalanche's own deprecation notices (one per experience) are dropped."""
    seen = set()
    for w in caught:
        key = (w.category.__name__, str(w.message))
        if issubclass(w.category, DeprecationWarning) or key in seen:
            continue
        seen.add(key)
        log(f"warning: {key[0]}: {key[1]}")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_config(
    config: RunConfig,
    *,
    out_dir: str | Path,
    resume: bool = False,
    components: Components | None = None,
    log: Callable[[str], None] = _stderr,
    progress: bool | None = None,
) -> ResultsFolder:
    """Run every strategy of ``config`` under every seed and write the results into ``out_dir``.

    Args:
        config: The resolved run config.
        out_dir: The results folder (created; must not hold another run unless ``resume``).
        resume: Skip finished runs and continue the interrupted one from its last checkpoint.
        components: The factories to use (default: the project's real ones).
        log: Where progress lines go (default: stderr).
        progress: Show progress bars (``None``: the config's ``progress``); not part of the resolved config,
            so a run started with bars can be resumed without them.

    Returns:
        The results folder, with ``runs`` holding every record.

    Raises:
        ConfigError: if ``out_dir`` holds another run, or ``resume`` is asked with a different config.
    """
    folder = ResultsFolder(out_dir, config_text=dump_config(config), name=config.name)
    runner = _Runner(config, folder, components or default_components(), log,  # checks the device first
                     progress=config.progress if progress is None else progress)
    folder.start(resume=resume)
    folder.scenario = dict(config.scenario)
    folder.context["environment"] = _environment(runner.device, config.threads)
    try:
        with run_environment(config.threads, log):
            _run_all(config, folder, runner, resume=resume, log=log)
    finally:
        folder.close()
    return folder


def _run_all(
    config: RunConfig, folder: ResultsFolder, runner: _Runner, *, resume: bool, log: Callable[[str], None]
) -> None:
    for seed in config.seeds:  # seed by seed: one stream in memory, and every strategy compared early
        for s in config.strategies:
            if folder.finished(s.label, seed):
                log(f"[{s.label} seed {seed}] already finished, skipped")
                remove_checkpoint(checkpoint_path(folder.checkpoint_dir, strategy=s.label, seed=seed))
                continue
            try:
                record = runner.run_one(s, seed, resume=resume)
            except DivergenceError as exc:  # that run has no figures; the others go on
                log(f"[{s.label} seed {seed}] failed: {exc}")
                record = failed_record(s, seed, exc)
            folder.add(record, plot=s is config.strategies[-1])
            remove_checkpoint(checkpoint_path(folder.checkpoint_dir, strategy=s.label, seed=seed))
    folder.write()
