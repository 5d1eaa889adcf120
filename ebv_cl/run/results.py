"""The results folder of ``ebv-cl run``: resolved config, ``results.json``, ``results.md`` and ``accuracy.png``.

``results.json`` is ``{"format": 1, "name", "config_sha256", "scenario", "bank" (when a strategy used one:
its n, dim, method, seed, coherence, sha256), "environment" (versions, device, threads), "runs": [...]}`` with
one record per
strategy and seed (keys ``strategy``, ``head``, ``method``, ``seed``, ``accuracy_matrix``, ``seen_accuracy``,
``avg_incremental_accuracy``, ``final_accuracy``, ``forgetting``, ``class_accuracy``, ``trainable_head_params``,
``wall_time_s``, ...; accuracies are fractions in [0, 1], ``null`` where undefined). Every write is atomic;
``results.json`` and ``results.md`` are rewritten as soon as a run finishes, so a crash loses only the run in
progress, and ``accuracy.png`` (slower to draw) once every strategy of a seed has finished. ``results.md`` holds the
comparison table (mean and sample standard deviation over seeds, in percent), then, per method, what swapping
the fc head for each other head changes (``head_effect_table``: differences paired by seed, with a paired
t-test), and ``accuracy.png`` the
accuracy on seen classes after each experience, one line per strategy (mean over seeds).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from ..errors import ConfigError, OutputError, RunFolderBusyError

__all__ = [
    "ResultsFolder", "config_digest", "comparison_table", "head_effect_table", "session_table", "results_markdown",
    "plot_accuracy", "accuracy_axis_limits", "FORMAT", "succeeded", "failures_markdown", "read_results_json",
]

FORMAT = 1
RESOLVED_CONFIG = "resolved_config.yaml"
LOCK_FILE = ".lock"


def succeeded(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of runs that finished with figures (a diverged run is recorded with ``failed`` instead)."""
    return [r for r in runs if not r.get("failed")]


def failures_markdown(runs: Sequence[dict[str, Any]]) -> str:
    """A Markdown list of the failed runs ("" if none): they have no figures and are left out of every table."""
    failed = [r for r in runs if r.get("failed")]
    if not failed:
        return ""
    lines = ["## Failed runs (no figures)", ""]
    lines += [f"- {r['strategy']} seed {r['seed']}: {r['failed']}" for r in failed]
    return "\n".join(lines) + "\n"


def read_results_json(path: Path) -> dict[str, Any]:
    """Read and check a ``results.json``: a mapping whose ``runs`` are records with ``strategy`` and ``seed``.

    Raises:
        ConfigError: naming the file, on invalid JSON or UTF-8, or on a malformed payload or record.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{str(path)!r} is not valid JSON ({exc}); it may have been truncated") from None
    if not isinstance(data, dict) or not isinstance(data.get("runs", []), list):
        raise ConfigError(f"{str(path)!r} is not an ebv-cl results file (expected a mapping with a list 'runs')")
    for i, run in enumerate(data.get("runs", [])):
        if not isinstance(run, dict) or not isinstance(run.get("strategy"), str) or not isinstance(run.get("seed"), int):
            raise ConfigError(f"{str(path)!r}: runs[{i}] is not a run record (expected 'strategy' and 'seed'), "
                              f"got {run!r:.120}")
    return data


def config_digest(config_text: str) -> str:
    """SHA-256 of the resolved config text, used to refuse resuming a folder with another config."""
    return hashlib.sha256(config_text.encode("utf-8")).hexdigest()


def _mean_std(values: Sequence[float | None]) -> tuple[float, float, int]:
    vals = np.array([v for v in values if v is not None], dtype=float)
    if vals.size == 0:
        return math.nan, math.nan, 0
    std = float(vals.std(ddof=1)) if vals.size > 1 else math.nan
    return float(vals.mean()), std, int(vals.size)


def _pct(values: Sequence[float | None]) -> str:
    mean, std, n = _mean_std(values)
    if n == 0:
        return "n/a"
    return f"{100 * mean:.2f}" if n == 1 else f"{100 * mean:.2f} ± {100 * std:.2f}"


def _group(runs: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault(run["strategy"], []).append(run)
    return groups


def comparison_table(runs: Sequence[dict[str, Any]], *, title: str | None = None) -> str:
    """The Markdown comparison table: one row per strategy, mean ± std over its seeds (percent)."""
    lines = [f"# {title}", ""] if title else []
    lines += [
        "| strategy | head | method | seeds | avg incremental acc. (%) | final acc. (%) | forgetting (%) "
        "| trainable head params (last) | wall time (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, group in _group(runs).items():
        params = sorted({g["trainable_head_params"][-1] for g in group if g["trainable_head_params"]})
        wall, _, _ = _mean_std([g["wall_time_s"] for g in group])
        lines.append(
            f"| {label} | {group[0]['head']} | {group[0]['method']} | {len(group)} "
            f"| {_pct([g['avg_incremental_accuracy'] for g in group])} "
            f"| {_pct([g['final_accuracy'] for g in group])} | {_pct([g['forgetting'] for g in group])} "
            f"| {'/'.join(str(p) for p in params)} | {wall:.1f} |"
        )
    lines += [
        "",
        "Mean ± sample standard deviation over seeds. Accuracy is on the test samples of all classes seen so far; "
        "forgetting is the mean over classes of best earlier minus final accuracy.",
        "",
    ]
    return "\n".join(lines)


def _paired(runs: Sequence[dict[str, Any]], key: str, strategy: str, baseline: str) -> list[float]:
    """Per seed both strategies ran (labels ``strategy`` and ``baseline``), ``strategy``'s ``key`` minus the baseline's."""
    by_seed: dict[str, dict[int, float]] = {strategy: {}, baseline: {}}
    for run in runs:
        if run["strategy"] in by_seed and run.get(key) is not None:
            by_seed[run["strategy"]][run["seed"]] = float(run[key])
    common = sorted(set(by_seed[strategy]) & set(by_seed[baseline]))
    return [by_seed[strategy][s] - by_seed[baseline][s] for s in common]


def _verdict(diffs: Sequence[float], *, higher_is_better: bool = True) -> str:
    """Two-sided paired t-test at the 5% level on per-seed differences (needs 3 seeds or more).

    With 2 seeds the test has one degree of freedom and a zero spread (two runs that differ by the same few test
    images) would read as certain, so no verdict is given below 3.
    """
    if len(diffs) < 3:
        return "n/a (fewer than 3 seeds)"
    from scipy import stats

    mean, std = float(np.mean(diffs)), float(np.std(diffs, ddof=1))
    if std == 0.0:
        significant = mean != 0.0
    else:
        t = mean / (std / math.sqrt(len(diffs)))
        significant = abs(t) > float(stats.t.ppf(0.975, len(diffs) - 1))
    if not significant:
        return "no clear difference"
    return "better" if (mean > 0) == higher_is_better else "worse"


def _points(diffs: Sequence[float]) -> str:
    mean, std, n = _mean_std(diffs)
    if n == 0:
        return "n/a"
    return f"{100 * mean:+.2f}" if n == 1 else f"{100 * mean:+.2f} ± {100 * std:.2f}"


def head_effect_table(runs: Sequence[dict[str, Any]], *, baseline: str = "fc") -> str:
    """Per method, what swapping the ``baseline`` head for each other head changes (Markdown; "" if nothing to pair).

    Differences are paired by seed (a seed fixes the class order, the subsamples and the backbone's
    initialisation, so two heads under one seed see the same stream): mean ± sample standard deviation of the
    per-seed differences in points, and the verdict of a two-sided paired t-test at the 5% level on final
    accuracy ("better", "worse" or "no clear difference"; none with fewer than 3 paired seeds). Every other
    strategy of a method is paired, by its label, with the method's strategy of the ``baseline`` head that has no
    ``name`` of its own (``baseline+method``; else the first of that head), so two variants of one head get a row
    each, a named one shown as ``head (name)``; with ``baseline="ebv"`` a named EBV variant is compared with the
    unnamed EBV strategy.
    """
    rows = []
    methods = list(dict.fromkeys(run["method"] for run in runs))
    for method in methods:
        strategies = {r["strategy"]: r["head"] for r in runs if r["method"] == method}
        candidates = [label for label, head in strategies.items() if head == baseline]
        if not candidates:
            continue
        reference = f"{baseline}+{method}" if f"{baseline}+{method}" in candidates else candidates[0]
        for label, head in strategies.items():
            if label == reference:
                continue
            final = _paired(runs, "final_accuracy", label, reference)
            if not final:
                continue
            forget = _paired(runs, "forgetting", label, reference)
            shown = head if label == f"{head}+{method}" else f"{head} ({label})"
            rows.append(f"| {method} | {shown} | {len(final)} | {_points(final)} | {_points(forget)} "
                        f"| {_verdict(final)} |")
    if not rows:
        return ""
    return "\n".join([
        f"## Swapping {baseline} for another head, per method",
        "",
        f"| method | head | paired seeds | final acc. minus {baseline} (points) | forgetting minus {baseline} (points) "
        "| final acc.: paired t-test, 5% |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "Differences are paired by seed (same class order, subsamples and initialisation); mean ± sample "
        "standard deviation over seeds. Lower forgetting is better.",
        "",
    ])


def _drop(run: dict[str, Any]) -> float | None:
    seen = run.get("seen_accuracy") or []
    if run.get("performance_drop") is not None:
        return run["performance_drop"]
    return None if not seen or seen[0] is None or seen[-1] is None else seen[0] - seen[-1]


def session_table(runs: Sequence[dict[str, Any]]) -> str:
    """The few-shot class-incremental table as papers print it (Markdown): one row per strategy, the accuracy on
    all classes seen so far after every session (mean over seeds, percent), the average over sessions and the
    performance drop (session 0 minus the last), both mean ± std over seeds."""
    groups = _group(runs)
    n = max(len(g["seen_accuracy"]) for group in groups.values() for g in group)
    lines = [
        "## Accuracy on all seen classes after each session",
        "",
        "| strategy | seeds | " + " | ".join(str(i) for i in range(n)) + " | average | drop (0 minus last) |",
        "|---|---|" + "---|" * n + "---|---|",
    ]
    for label, group in groups.items():
        cells = []
        for i in range(n):
            mean, _, k = _mean_std([g["seen_accuracy"][i] if i < len(g["seen_accuracy"]) else None for g in group])
            cells.append("n/a" if k == 0 else f"{100 * mean:.2f}")
        lines.append(f"| {label} | {len(group)} | " + " | ".join(cells)
                     + f" | {_pct([g['avg_incremental_accuracy'] for g in group])} | {_pct([_drop(g) for g in group])} |")
    lines += ["", "Session 0 is the base session; per-session cells are means over seeds (percent).", ""]
    return "\n".join(lines)


def results_markdown(runs: Sequence[dict[str, Any]], *, title: str | None = None, baseline: str = "fc",
                     sessions: bool = False) -> str:
    """The text of ``results.md``: the comparison table, then (``sessions``: a few-shot stream) the per-session
    table, then the head-effect table when there is one, then the failed runs (no figures) if any."""
    ok = succeeded(runs)
    effects = head_effect_table(ok, baseline=baseline)
    failed = failures_markdown(runs)
    text = comparison_table(ok, title=title)
    if sessions and ok:
        text += "\n" + session_table(ok)
    return text + ("\n" + effects if effects else "") + ("\n" + failed if failed else "")


def accuracy_axis_limits(curves: Sequence[np.ndarray], *, min_span: float = 10.0) -> tuple[float, float]:
    """The y range (percent) that fits ``curves`` (means and bands), padded by 5% and kept inside [0, 100].

    Lines between 74 and 100 get an axis from about 73 to 100, not 0 to 100; the span is at least ``min_span``
    points so that noise is not magnified. No finite value gives (0, 100).
    """
    values = np.concatenate([np.ravel(c) for c in curves]) if curves else np.array([])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 100.0
    lo, hi = float(values.min()), float(values.max())
    pad = max(0.05 * (hi - lo), 0.5 * max(0.0, min_span - (hi - lo)))
    lo, hi = max(0.0, lo - pad), min(100.0, hi + pad)
    if hi - lo < min_span:  # clipped at 0 or 100: widen towards the other side
        lo, hi = (0.0, min(100.0, min_span)) if lo == 0.0 else (max(0.0, hi - min_span), hi)
    return lo, hi


def plot_accuracy(runs: Sequence[dict[str, Any]], *, title: str | None = None, sessions: bool = False) -> bytes:
    """PNG bytes of accuracy on seen classes after each experience, one line per strategy (mean over seeds).

    With ``sessions`` (a few-shot stream) the x axis counts sessions from 0, the base session, as papers do.

    The colour names the head and the line style the method, so a head's lines read across methods; the
    band is one standard deviation over seeds and the legend sits outside the axes.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    groups = _group(succeeded(runs))
    heads = list(dict.fromkeys(g[0].get("head", label) for label, g in groups.items()))
    methods = list(dict.fromkeys(g[0].get("method", "") for g in groups.values()))
    styles = [("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"), ((0, (5, 1)), "v"), ((0, (1, 1)), "P")]
    fig = Figure(figsize=(8.4, 4.4), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    shown: list[np.ndarray] = []
    for label, group in groups.items():
        curves = np.array([[np.nan if v is None else v for v in g["seen_accuracy"]] for g in group], dtype=float)
        mean = 100 * np.nanmean(curves, axis=0)
        xs = np.arange(0 if sessions else 1, mean.size + (0 if sessions else 1))
        color = f"C{heads.index(group[0].get('head', label)) % 10}"
        linestyle, marker = styles[methods.index(group[0].get("method", "")) % len(styles)]
        ax.plot(xs, mean, color=color, linestyle=linestyle, marker=marker, markersize=4,
                label=f"{label} ({len(group)} seed{'s' * (len(group) > 1)})")
        shown.append(mean)
        if len(group) > 1:
            std = 100 * np.nanstd(curves, axis=0, ddof=1)
            ax.fill_between(xs, mean - std, mean + std, color=color, alpha=0.08, linewidth=0)
            shown += [mean - std, mean + std]
    ax.set_xlabel("session" if sessions else "experience")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("accuracy on seen classes (%)")
    ax.set_ylim(*accuracy_axis_limits(shown))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    if title:
        ax.set_title(title)
    fig.subplots_adjust(left=0.08, right=0.72, bottom=0.12, top=0.92)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


class ResultsFolder:
    """The output folder of one ``ebv-cl run``: owns every file written there.

    Args:
        path: The folder (created if missing).
        config_text: The resolved config as YAML text.
        name: The run's name, used as the title of the table and plot.
    """

    def __init__(self, path: str | Path, *, config_text: str, name: str | None = None) -> None:
        self.path = Path(path)
        self.config_text = config_text
        self.name = name
        self.digest = config_digest(config_text)
        self.runs: list[dict[str, Any]] = []
        self.scenario: dict[str, Any] = {}
        self.context: dict[str, Any] = {}
        self._lock_fd: int | None = None

    @property
    def results_json(self) -> Path:
        return self.path / "results.json"

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    def _holds_run(self) -> bool:
        """Whether the folder holds a run: a finished record or a checkpoint (a finished experience).

        A folder where only a failed start left ``resolved_config.yaml`` holds nothing worth keeping.
        """
        if self.results_json.exists() and read_results_json(self.results_json).get("runs"):
            return True
        return self.checkpoint_dir.is_dir() and any(self.checkpoint_dir.glob("*.ckpt"))

    def _lock(self) -> None:
        """Take the folder's lock (``flock`` on ``.lock``, released when this process ends, however it ends).

        Raises:
            RunFolderBusyError: if another process holds it.
        """
        lock_path = self.path / LOCK_FILE
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunFolderBusyError(
                    f"--out {str(self.path)!r} is in use by another ebv-cl run (process {holder}); wait for it to "
                    "end or choose another --out"
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._lock_fd = fd

    def close(self) -> None:
        """Release the folder's lock (also released by the OS if the process dies)."""
        fd = getattr(self, "_lock_fd", None)
        if fd is not None:
            self._lock_fd = None
            os.close(fd)

    def _clean_temporaries(self) -> None:
        """Remove ``.*.tmp`` files that a killed process left mid-write (only the lock holder calls this)."""
        for folder in (self.path, self.checkpoint_dir):
            if folder.is_dir():
                for tmp in folder.glob(".*.tmp"):
                    tmp.unlink(missing_ok=True)

    def start(self, *, resume: bool) -> None:
        """Create the folder and take its lock, or reopen it for ``--resume``.

        The lock is held until ``close`` (or the process's end), so two runs never write one folder.

        Raises:
            ConfigError: if the folder holds a run (a finished record or checkpoint) and ``resume`` is false,
                ``resume`` is asked for a folder that holds no run or whose resolved config differs from this
                one, ``--out`` is not a folder, or ``results.json`` is malformed.
            RunFolderBusyError: if another process holds the folder.
            OutputError: if the folder cannot be created or written.
        """
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"--out {str(self.path)!r} is a file, expected a folder (new or of an earlier run)")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock()
        except (FileExistsError, NotADirectoryError):
            raise ConfigError(f"--out {str(self.path)!r}: a parent of it is a file, expected folders") from None
        except OSError as exc:
            raise OutputError(f"cannot create or lock the output folder {str(self.path)!r}: {exc.strerror or exc}") from None
        try:
            self._open(resume=resume)
            self._clean_temporaries()
            self._write_file(self.path / RESOLVED_CONFIG, lambda p: atomic_write_text(p, self.config_text))
        except BaseException:
            self.close()
            raise

    def _open(self, *, resume: bool) -> None:
        holds = self._holds_run()
        if resume and not (self.path / RESOLVED_CONFIG).exists():
            raise ConfigError(
                f"--resume: {str(self.path)!r} holds no run to continue (no {RESOLVED_CONFIG}); "
                "drop --resume to start a new run there"
            )
        if holds and not resume:
            raise ConfigError(
                f"--out {str(self.path)!r} already holds a run; pass --resume to continue it or choose another --out"
            )
        if resume and holds:
            try:
                old = (self.path / RESOLVED_CONFIG).read_text(encoding="utf-8")
            except UnicodeDecodeError:
                old = ""
            if config_digest(old) != self.digest:
                raise ConfigError(
                    f"--resume: the config differs from the one in {str(self.path / RESOLVED_CONFIG)!r}; "
                    "resume with the same config and overrides, or choose another --out"
                )
            if self.results_json.exists():
                data = read_results_json(self.results_json)
                self.runs = list(data.get("runs", []))
                self.scenario = dict(data.get("scenario", {}))
                self.context = {k: v for k, v in data.items() if k in ("bank", "environment")}

    @staticmethod
    def _write_file(path: Path, write: Any) -> None:
        """Run ``write(path)``; an OS failure becomes one ``OutputError`` naming the path and the cause."""
        try:
            write(path)
        except OSError as exc:
            raise OutputError(
                f"cannot write {str(path)!r}: {exc.strerror or exc}; the results written before are intact "
                "(free space or fix permissions, then rerun with --resume)"
            ) from None

    def finished(self, strategy: str, seed: int) -> bool:
        """Whether the record of ``strategy`` under ``seed`` is already written."""
        return any(r["strategy"] == strategy and r["seed"] == seed for r in self.runs)

    def add(self, record: dict[str, Any], *, plot: bool = True) -> None:
        """Append one finished run and rewrite the results files atomically (the plot only if ``plot``)."""
        self.runs = [r for r in self.runs if not (r["strategy"] == record["strategy"] and r["seed"] == record["seed"])]
        self.runs.append(record)
        self.write(plot=plot)

    def write(self, *, plot: bool = True) -> None:
        """Rewrite ``results.json``, ``results.md`` and (if ``plot``) ``accuracy.png`` from the runs so far."""
        payload = {
            "format": FORMAT,
            "name": self.name,
            "config_sha256": self.digest,
            "scenario": self.scenario,
            **self.context,
            "runs": self.runs,
        }
        self._write_file(self.results_json, lambda p: atomic_write_json(p, payload))
        if self.runs:
            sessions = self.scenario.get("kind") == "few_shot"
            text = results_markdown(self.runs, title=self.name, sessions=sessions)
            self._write_file(self.path / "results.md", lambda p: atomic_write_text(p, text))
            if plot and succeeded(self.runs):
                png = plot_accuracy(self.runs, title=self.name, sessions=sessions)
                self._write_file(self.path / "accuracy.png", lambda p: atomic_write_bytes(p, png))
