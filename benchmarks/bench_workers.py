"""``ebv-cl run --workers 2`` against the sequential run of the same config, side by side, Ray start-up included.

    python benchmarks/bench_workers.py                                   # peers-digits, epochs=5, 2 rounds
    python benchmarks/bench_workers.py --rounds 3 --workers 2 --overrides epochs=5

Each round runs, one after another in fresh processes with one torch/OpenMP thread per job: the sequential
runner (no ``--workers``), ``--workers 1`` and ``--workers N`` (each on Ray, a local instance started and
stopped by the command). It prints the wall times, the ratio of each to the sequential run of the same round,
the load average (``/proc/loadavg``) before and after each command, the CPU model, and whether the records
(strategy, seed, accuracy matrices: everything but ``wall_time_s``) of every run equal the sequential run's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _figures(out: Path) -> list[dict]:
    runs = json.loads((out / "results.json").read_text())["runs"]
    return [{k: v for k, v in r.items() if k != "wall_time_s"} for r in runs]


def _run(config: str, overrides: list[str], workers: int | None, out: Path, timeout: float) -> tuple[float, str, str]:
    cmd = [sys.executable, "-m", "ebv_cl", "run", config, *overrides, "--out", str(out), "--no-progress"]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    before = _load()
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout)
    return time.perf_counter() - start, before, _load()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(ROOT / "examples/configs/peers-digits.yaml"))
    p.add_argument("--overrides", nargs="*", default=["epochs=5", "threads=1"])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per command")
    args = p.parse_args()
    print(f"CPU: {_cpu()}, {os.cpu_count()} logical cores; config {args.config} {' '.join(args.overrides)}")
    print("| round | command | wall s | / sequential | load before | load after | records equal |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            base = None
            for workers in (None, 1, args.workers):
                out = Path(tmp) / f"r{r}-w{workers or 0}"
                wall, before, after = _run(args.config, args.overrides, workers, out, args.timeout)
                if base is None:
                    base, reference = wall, _figures(out)
                same = _figures(out) == reference
                label = "sequential" if workers is None else f"--workers {workers}"
                print(f"| {r + 1} | {label} | {wall:.1f} | {wall / base:.2f} | {before} | {after} | {same} |",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
