"""The training step of ``ebv+replay`` as ``ebv-cl run`` builds it, against ``ebv-cl bench head``'s step.

    python benchmarks/bench_run_step.py                                  # 10^4 and 10^5 classes, one thread
    python benchmarks/bench_run_step.py --classes 10000 --rounds 3
    python benchmarks/bench_run_step.py --run-config CONFIG.yaml      # inside a whole `ebv-cl run` (below)

For each class count C, in one process and one torch thread, with the CPU time of the calling thread:

- **run path**: the strategy ``ebv-cl run`` builds (``build_strategy``: ``HeadedModel``, ``HeadLoss``,
  ``ClassAllocationPlugin``, Avalanche's ``ReplayPlugin``, a stock ``SupervisedTemplate``) for head ``ebv`` with
  the sampled softmax under method ``replay``; the head holds all C classes (allocated before training, as
  after a stream that has shown them) and the stream is two experiences of 64 of them; the second experience
  replays, so every timed step is ``batch - mem`` new + ``mem`` replayed samples (``batch`` in all). A step is
  what Avalanche runs between ``before_training_iteration`` and ``after_training_iteration``: forward,
  criterion, backward, optimizer step and every plugin's callbacks. The backbone is one ``Linear(16,
  in_features)`` so that the head dominates. Paths: ``features`` (``HeadedModel(training_output="features")``:
  the loss gets the backbone features and scores the sampled classes only; what ``ebv-cl run`` uses for
  ``replay``), ``logits`` (``training_output="logits"``: full logits over every class in training, with the
  loss taken from them, as for the methods that read them: DER, LwF, iCaRL) and ``before`` (the path before
  ``training_output`` existed, re-enacted: the forward also formed the full logits with autograd, which the
  loss then ignored; a plugin forms them after the forward).
- **bench head**: ``ebv-cl bench head``'s own step (``ebv_cl.bench.head``) for ``ebv_sampled`` and ``ebv_full``
  at the same C, batch, feature size and bank dimension.

``--run-config CONFIG`` instead runs the config itself through ``ebv_cl.run.run_config`` (what ``ebv-cl run``
calls: scenario, backbone, bank, evaluation, results), once per ``--paths`` entry (``features``: as the runner
builds it; ``before``: the same with the full logits formed and dropped after every forward), with the step
timer added to the strategy's plugins, and prints the median CPU ms per step of each experience and the CPU
seconds of the whole run (data, bank, training, evaluation).

Rounds alternate the paths (one epoch of the second experience per run path, then as many steps per bench
method), so load from other processes hits them alike. Prints the median and fastest CPU ms per step and the
ratio of each path to ``bench head``'s sampled step.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avalanche.benchmarks import nc_benchmark  # noqa: E402
from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset as tensors  # noqa: E402
from avalanche.core import SupervisedPlugin  # noqa: E402
from torch import nn  # noqa: E402

from ebv_cl.bank import EBVBank  # noqa: E402
from ebv_cl.bench import head as bench_head  # noqa: E402
from ebv_cl.continual.strategies import build_strategy  # noqa: E402
from ebv_cl.continual.strategies.model import find_headed_model  # noqa: E402

PATHS = ("features", "logits", "before")


class FullLogitsToo(SupervisedPlugin):
    """The path before ``training_output`` existed: every training forward also formed the class-id logits
    over all classes (with autograd), which ``HeadLoss`` then ignored for the head's loss on the features."""

    def after_forward(self, strategy: Any, **kwargs: Any) -> None:
        headed = find_headed_model(strategy.model)
        headed.scatter(headed.head(strategy.mb_output))  # formed and dropped, as the old forward's output was


class StepTimer(SupervisedPlugin):
    """CPU time of the calling thread from ``before_training_iteration`` to ``after_training_iteration``."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []
        self.record = False
        self._start = 0.0

        self.by_experience: dict[int, list[float]] = {}

    def before_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        self._start = time.thread_time()

    def after_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        ms = (time.thread_time() - self._start) * 1e3
        if self.record:
            self.times.append(ms)
        exp = int(getattr(strategy.experience, "current_experience", 0))
        self.by_experience.setdefault(exp, []).append(ms)


class Backbone(nn.Module):
    """One linear layer from the 16 raw inputs to ``feature_dim`` features."""

    def __init__(self, feature_dim: int) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.layer = nn.Linear(16, feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


def _stream(classes: int, per_class: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randperm(classes, generator=g)[:128].sort().values
    y = labels.repeat_interleave(per_class)
    x = torch.randn(len(y), 16, generator=g)
    order = [int(c) for c in labels]
    return nc_benchmark(tensors(x, y), tensors(x[::per_class], y[::per_class]), n_experiences=2, task_labels=False,
                        fixed_class_order=order, class_ids_from_zero_in_each_exp=False,
                        class_ids_from_zero_from_first_exp=False)


def _run_path(path: str, args: argparse.Namespace, bank: EBVBank, classes: int):
    timer = StepTimer()
    plugins = [FullLogitsToo(), timer] if path == "before" else [timer]
    path = "features" if path == "before" else path
    mem = args.batch // 2
    strategy, model = build_strategy(
        head="ebv", method="replay", backbone=Backbone(args.in_features), n_classes_total=classes, bank=bank,
        head_options={"sampled_negatives": args.sampled_negatives, "hard_negatives": args.hard_negatives,
                      "projection": "linear", "feature_bn": False, "temperature": 0.07},
        method_options={"storage": "reservoir", "batch_size_mem": mem}, buffer_size=4 * args.batch,
        batch_size=args.batch - mem, optimizer="adam", lr=1e-3, seed=args.seed, plugins=plugins,
    )
    headed = find_headed_model(model)
    if hasattr(headed, "training_output"):
        headed.training_output = path
    elif path != "features":
        raise SystemExit("this checkout has no training_output: only the one path exists")
    headed.head.add_classes(range(classes))  # the head holds every class, as bench head's does
    return strategy, timer


def _bench_method(method: str, args: argparse.Namespace, bank: EBVBank, classes: int):
    cfg = {"seed": args.seed, "in_features": args.in_features, "dim": args.dim, "temperature": 0.07,
           "no_projection": False, "sampled_negatives": args.sampled_negatives,
           "hard_negatives": args.hard_negatives, "hard_negative_mode": "bank", "optimizer": "adam",
           "device": "cpu", "batch": args.batch}
    _, x, y = bench_head._inputs(cfg, classes, 1)
    head, opt = bench_head._build(method, cfg, bank, classes)
    return head, opt, x, y


def measure(classes: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Time every path at ``classes`` classes; one record per path."""
    g = torch.Generator().manual_seed(args.seed)
    bank = EBVBank(nn.functional.normalize(torch.randn(classes, args.dim, generator=g), dim=1))
    stream = _stream(classes, args.per_class, args.seed)
    first, second = stream.train_stream[0], stream.train_stream[1]
    runs = {p: _run_path(p, args, bank, classes) for p in args.paths}
    for strategy, _ in runs.values():
        strategy.train(first)
        strategy.train(second)  # warm: fills the hard-negative cache of the second experience's classes
    benches = {m: _bench_method(m, args, bank, classes) for m in args.bench}
    for head, opt, x, y in benches.values():
        for _ in range(3):
            bench_head._step(head, opt, x, y)
    bench_times: dict[str, list[float]] = {m: [] for m in benches}
    steps = -(-len(second.dataset) // (args.batch - args.batch // 2))
    for _ in range(args.rounds):
        for strategy, timer in runs.values():
            timer.record = True
            strategy.train(second)
            timer.record = False
        for m, (head, opt, x, y) in benches.items():
            bench_times[m].extend(bench_head._step(head, opt, x, y, time.thread_time) for _ in range(steps))
    records = []
    for p, (strategy, timer) in runs.items():
        records.append({"classes": classes, "path": f"run ({p})", "times": timer.times})
    for m, times in bench_times.items():
        records.append({"classes": classes, "path": f"bench head {m}", "times": times})
    ref = next((r for r in records if r["path"] == "bench head ebv_sampled"), None)
    for r in records:
        t = r.pop("times")
        r.update(ms_median=statistics.median(t), ms_min=min(t), steps=len(t))
    for r in records:
        r["over_bench_sampled"] = None if ref is None else r["ms_median"] / ref["ms_median"]
    return records


def measure_config(path: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Run the config at ``path`` through ``run_config`` once per path; per-experience step times."""
    import tempfile
    from dataclasses import replace

    from ebv_cl.run import run_config
    from ebv_cl.run.components import default_components
    from ebv_cl.run.config import load_config

    config = load_config(path)
    records = []
    for p in args.paths:
        timer = StepTimer()
        extra = [FullLogitsToo(), timer] if p == "before" else [timer]
        parts = default_components()
        build = parts.build_strategy

        def with_timer(**kwargs: Any) -> Any:
            kwargs["plugins"] = [*kwargs.get("plugins", ()), *extra]
            return build(**kwargs)

        with tempfile.TemporaryDirectory(prefix="bench-run-step-") as out:
            start = time.process_time()
            folder = run_config(config, out_dir=out, components=replace(parts, build_strategy=with_timer),
                                log=lambda m: None, progress=False)
            total = time.process_time() - start
            runs = json.loads((Path(folder.path) / "results.json").read_text())["runs"]
        for exp, t in sorted(timer.by_experience.items()):
            records.append({"path": f"run ({p}), experience {exp}", "ms_median": statistics.median(t),
                            "ms_min": min(t), "steps": len(t), "process_cpu_s": total,
                            "final_accuracy": runs[0]["final_accuracy"] if runs else None})
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classes", default="10000,100000")
    parser.add_argument("--paths", default=",".join(PATHS), help="run paths: features, logits (comma-separated)")
    parser.add_argument("--bench", default="ebv_sampled,ebv_full", help="bench head methods")
    parser.add_argument("--batch", type=int, default=256, help="samples per step (half new, half replayed)")
    parser.add_argument("--in-features", type=int, default=512)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--sampled-negatives", type=int, default=128)
    parser.add_argument("--hard-negatives", type=int, default=128)
    parser.add_argument("--per-class", type=int, default=16, help="training samples per class of the stream")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--run-config", default=None, help="time the steps of this run config (see above)")
    args = parser.parse_args(argv)
    args.paths = [p for p in args.paths.split(",") if p]
    args.bench = [m for m in args.bench.split(",") if m]
    torch.set_num_threads(1)
    if args.run_config:
        return _print_config(measure_config(args.run_config, args), args)
    results = [r for c in args.classes.split(",") for r in measure(int(c), args)]
    if args.json:
        print(json.dumps(results))
        return 0
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    print(f"CPU ms per training step (thread CPU time, 1 thread), batch {args.batch}, {args.in_features} "
          f"features, d = {args.dim}; {cpu}; load {' '.join(open('/proc/loadavg').read().split()[:3])}")
    print(f"{'classes':>8}  {'path':<26} {'median ms':>10} {'min ms':>8} {'steps':>6} {'/ bench sampled':>16}")
    for r in results:
        ratio = "" if r["over_bench_sampled"] is None else f"{r['over_bench_sampled']:.2f}x"
        print(f"{r['classes']:>8}  {r['path']:<26} {r['ms_median']:>10.2f} {r['ms_min']:>8.2f} {r['steps']:>6} "
              f"{ratio:>16}")
    return 0


def _print_config(records: list[dict[str, Any]], args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps(records))
        return 0
    print(f"CPU ms per training step inside run_config ({args.run_config}), 1 thread; load "
          f"{' '.join(open('/proc/loadavg').read().split()[:3])}")
    print(f"{'path':<34} {'median ms':>10} {'min ms':>8} {'steps':>6} {'run CPU s':>10} {'final acc':>10}")
    for r in records:
        print(f"{r['path']:<34} {r['ms_median']:>10.2f} {r['ms_min']:>8.2f} {r['steps']:>6} "
              f"{r['process_cpu_s']:>10.1f} {r['final_accuracy']:>10.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
