"""``ebv-cl bench head``: one training step of FC and EBV heads (full and sampled softmax) per class count.

For every class count, the same backbone features (``--batch`` x ``--in-features``, requiring grad as they
would inside a network) and targets feed three heads built through ``create_head``: ``fc``, ``ebv`` with the
full softmax and ``ebv`` with the sampled softmax. A step is ``zero_grad + training_loss + backward +
optimizer.step``. The methods are timed round-robin so that load from other processes hits them alike:
many rounds, each running a short burst of steps per method whose first step is not timed when the method is
fast (it runs with the caches the previous method left); the median, minimum and quartiles per method are
reported, with the matrix-product multiply-adds (MMAC) per step for comparison. On a shared, loaded CPU use
``--threads 1 --clock cpu``: the CPU time of the calling thread (where torch then runs every op, backward
included) is not inflated when other processes preempt the benchmark, unlike elapsed time.

Also reported: trainable head parameters, optimizer-state bytes, and peak memory: on CPU the peak RSS increase
of a fresh subprocess that builds the head and runs a few steps (Linux ``VmHWM`` after resetting it through
``/proc/self/clear_refs``, measured from after the features and bank exist, so the bank is not counted), on
CUDA ``torch.cuda.max_memory_allocated`` above the memory in use before the head was built. The bank is
random unit vectors: its quality does not change the step time. The first sampled step also fills the
per-class hard-negative cache (``hard_negative_mode="bank"``); its time is reported as ``first_step_ms``.

``--code`` uses a code bank instead (``ebv_cl.bank.codes``, the family ``choose_code`` picks for the largest
class count at ``--dim``, stored as a formula): the EBV heads then never form the bank, fetch the sampled rows
with ``bank.rows`` and mine hard negatives through the structured index (path ``fft``), so
``--classes 1000000 --dim 256 --methods ebv_sampled`` runs in a few hundred MB.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import Any

import torch

__all__ = ["add_arguments", "main", "measure_memory", "run"]

_METHODS = ("fc", "ebv_full", "ebv_sampled")
_SLOW_MS = 50.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``ebv-cl bench head``."""
    parser.add_argument("--classes", default="100,1000,10000,100000", help="comma-separated class counts")
    parser.add_argument("--methods", default=",".join(_METHODS), help="comma-separated subset of the methods")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--in-features", type=int, default=512, help="backbone feature size")
    parser.add_argument("--dim", type=int, default=128, help="bank dimension d (EBV projection size)")
    parser.add_argument("--temperature", type=float, default=0.07)
    parser.add_argument("--no-projection", action="store_true",
                        help="EBV heads without their own projection (the backbone ends in --dim features; "
                             "--in-features must equal --dim)")
    parser.add_argument("--sampled-negatives", type=int, default=128, help="uniform negatives per sampled step")
    parser.add_argument("--hard-negatives", type=int, default=128, help="hardest negative classes per sampled step")
    parser.add_argument("--hard-negative-mode", choices=("bank", "scan", "index"), default="bank")
    parser.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    parser.add_argument("--steps", type=int, default=100, help="timed steps per method and class count (at most)")
    parser.add_argument("--seconds", type=float, default=10.0, help="time budget per method and class count")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall: elapsed time; cpu: CPU time of the calling thread (CPU with --threads 1 only: "
                             "immune to preemption by other processes on a loaded machine)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's setting)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--code", action="store_true",
                        help="a code bank (Gold/Kasami, chosen for the largest --classes at --dim; needs --dim >= "
                             "the code length) instead of random unit vectors")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def _parse_classes(text: str) -> list[int]:
    try:
        values = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--classes must be comma-separated integers, got {text!r}") from None
    if not values or min(values) < 2:
        raise ValueError(f"--classes must list class counts >= 2, got {text!r}")
    return values


def _parse_methods(text: str) -> list[str]:
    methods = [m.strip() for m in str(text).split(",") if m.strip()]
    unknown = sorted(set(methods) - set(_METHODS))
    if not methods or unknown:
        raise ValueError(f"--methods must be a comma-separated subset of {','.join(_METHODS)}, got {text!r}")
    return [m for m in _METHODS if m in methods]


def _config(args: argparse.Namespace) -> dict[str, Any]:
    keys = ("batch", "in_features", "dim", "temperature", "sampled_negatives", "hard_negatives",
            "hard_negative_mode", "optimizer", "device", "seed", "no_projection", "clock", "code")
    cfg = {k: getattr(args, k) for k in keys}
    cfg["threads"] = torch.get_num_threads()
    return cfg


def _inputs(cfg: dict[str, Any], classes: int, capacity: int):
    from ..bank import EBVBank

    g = torch.Generator().manual_seed(cfg["seed"])
    if cfg.get("code"):
        bank = _code_bank(capacity, cfg["dim"])
    else:
        bank = EBVBank(torch.nn.functional.normalize(torch.randn(capacity, cfg["dim"], generator=g), dim=1))
    x = torch.randn(cfg["batch"], cfg["in_features"], generator=g).to(cfg["device"]).requires_grad_(True)
    y = torch.randint(classes, (cfg["batch"],), generator=g).to(cfg["device"])
    return bank, x, y


def _code_bank(capacity: int, dim: int):
    from ..bank import EBVBank
    from ..bank.codes import SequenceCode, choose_code

    choice = choose_code(capacity, dim)
    if choice is None:
        raise ValueError(f"--code: no code family holds {capacity} classes at --dim {dim}; raise --dim")
    return EBVBank.from_code(SequenceCode(choice.family, choice.m, capacity, dim))


def _build(method: str, cfg: dict[str, Any], bank, classes: int):
    from ..heads import create_head

    torch.manual_seed(cfg["seed"])
    if method == "fc":
        head = create_head("fc", cfg["in_features"])
    else:
        extra = {}
        if method == "ebv_sampled":
            extra = {"sampled_negatives": cfg["sampled_negatives"], "hard_negatives": cfg["hard_negatives"],
                     "hard_negative_mode": cfg["hard_negative_mode"]}
        head = create_head("ebv", cfg["in_features"], bank=bank, temperature=cfg["temperature"],
                           projection=not cfg["no_projection"], feature_bn=False, **extra)  # the paper's head
    head.add_classes(range(classes))
    head = head.to(cfg["device"])
    params = [p for p in head.parameters() if p.requires_grad] or [torch.nn.Parameter(torch.zeros(0))]
    if cfg["optimizer"] == "adam":
        return head, torch.optim.Adam(params, lr=1e-3)
    return head, torch.optim.SGD(params, lr=0.1, momentum=0.9)


def _step(head, opt, x, y, clock=time.perf_counter) -> float:
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    start = clock()
    opt.zero_grad(set_to_none=True)
    x.grad = None
    head.training_loss(x, y).backward()
    opt.step()
    sync()
    return (clock() - start) * 1e3


def _optimizer_bytes(opt: torch.optim.Optimizer) -> int:
    return sum(v.numel() * v.element_size() for s in opt.state.values() for v in s.values() if torch.is_tensor(v))


def _proc_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"{field} not in /proc/self/status")


def measure_memory(method: str, cfg: dict[str, Any], classes: int, capacity: int, *, steps: int = 2) -> int | None:
    """Peak memory in bytes that building ``method``'s head and running ``steps`` steps adds (see module doc)."""
    torch.set_num_threads(cfg["threads"])
    bank, x, y = _inputs(cfg, classes, capacity)
    warm = torch.nn.Linear(4, 2)  # first autograd/optimizer use allocates thread pools and caches: not the head's
    torch.optim.Adam(warm.parameters()).step(warm(torch.randn(3, 4)).sum().backward())
    if x.is_cuda:
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        try:
            base = _proc_kib("VmRSS") * 1024
            with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
                f.write("5")
        except OSError:
            return None
    head, opt = _build(method, cfg, bank, classes)
    for _ in range(steps):
        _step(head, opt, x, y)
    peak = torch.cuda.max_memory_allocated() if x.is_cuda else _proc_kib("VmHWM") * 1024
    return max(0, peak - base)


def _memory_subprocess(method: str, cfg: dict[str, Any], classes: int, capacity: int) -> int | None:
    code = ("import json,sys;from ebv_cl.bench.head import measure_memory as m;"
            "a=json.loads(sys.argv[1]);print(json.dumps(m(a[0],a[1],a[2],a[3])))")
    payload = json.dumps([method, cfg, classes, capacity])
    done = subprocess.run([sys.executable, "-c", code, payload], capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"memory probe for {method} at {classes} classes failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _time_methods(cfg, bank, classes, args) -> list[dict[str, Any]]:
    methods = _parse_methods(args.methods)
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    _, x, y = _inputs(cfg, classes, 1)
    built = {m: _build(m, cfg, bank, classes) for m in methods}
    first = {m: _step(*built[m], x, y) for m in methods}
    for _ in range(args.warmup):
        for m in methods:
            _step(*built[m], x, y)
    # Many rounds of short bursts, one burst per method, so that load from other processes hits every method
    # alike. A fast method's burst starts with an untimed step (the caches still hold the previous method's
    # tensors) and times three; a slow method (over 50 ms, where caches do not matter) times one step.
    estimate = {m: max(_step(*built[m], x, y), 1e-3) for m in methods}
    burst = {m: 3 if estimate[m] < _SLOW_MS else 1 for m in methods}
    round_ms = sum(estimate[m] * (burst[m] + (burst[m] > 1)) for m in methods)
    rounds = max(3, min(args.steps // 3, int(args.seconds * 1e3 * len(methods) / round_ms)))
    times: dict[str, list[float]] = {m: [] for m in methods}
    for _ in range(rounds):
        for m in methods:
            if burst[m] > 1:
                _step(*built[m], x, y)
            times[m].extend(_step(*built[m], x, y, clock) for _ in range(burst[m]))
    records = []
    for m in methods:
        head, opt = built[m]
        q = statistics.quantiles(times[m], n=4) if len(times[m]) > 1 else [times[m][0]] * 3
        sampled = m == "ebv_sampled" and head.uses_sampling(cfg["batch"])
        scored = head.last_class_set_size if sampled else classes
        records.append({
            "classes": classes, "method": m, "ms_per_step": q[1], "ms_min": min(times[m]), "ms_p25": q[0],
            "ms_p75": q[2], "steps": len(times[m]), "first_step_ms": first[m],
            "trainable_params": head.trainable_head_params, "optimizer_state_bytes": _optimizer_bytes(opt),
            "sampling_active": sampled, "classes_scored": scored,
            "mmac_per_step": _macs(m, cfg, scored, classes if sampled else 0) / 1e6,
        })
    return records


def _macs(method: str, cfg: dict[str, Any], scored: int, searched: int = 0) -> float:
    """Multiply-adds of the matrix products of one step (forward, and backward to weights and features).

    ``searched`` classes are scored without gradient per step by the ``scan``/``index`` hard-negative search.
    """
    b, i, d = cfg["batch"], cfg["in_features"], cfg["dim"]
    if method == "fc":
        return 3.0 * b * i * scored
    projection = 0.0 if cfg["no_projection"] else 3.0 * b * i * d  # forward, grad to weight, grad to features
    mining = float(b * d * searched) if cfg["hard_negative_mode"] in ("scan", "index") else 0.0
    return projection + 2.0 * b * d * scored + mining  # logits forward, grad to the embedding (fixed bank)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark and return the JSON-ready result (``config``, ``results``, ``checks``)."""
    counts = _parse_classes(args.classes)
    _parse_methods(args.methods)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.clock == "cpu" and (torch.get_num_threads() != 1 or args.device != "cpu"):
        raise ValueError("--clock cpu needs --device cpu and --threads 1 (it times the calling thread only)")
    cfg = _config(args)
    capacity = max(counts)
    bank, _, _ = _inputs(cfg, 2, capacity)
    results = []
    for classes in counts:
        records = _time_methods(cfg, bank, classes, args)
        for rec in records:
            mem = None if args.no_memory else _memory_subprocess(rec["method"], cfg, classes, capacity)
            rec["peak_memory_bytes"] = mem
            how = "cuda_max_allocated" if args.device.startswith("cuda") else "rss_vmhwm_delta"
            rec["memory_method"] = None if mem is None else how
        results.extend(records)
    code = getattr(bank, "code", None)
    if code is not None:
        cfg = {**cfg, "bank": f"code bank {code.family} m={code.m} length {code.length}"}
    return {"benchmark": "head", "config": cfg, "results": results, "checks": _checks(results, counts)}


def _checks(results: list[dict[str, Any]], counts: list[int]) -> dict[str, Any]:
    by = {(r["method"], r["classes"]): r for r in results}
    lo, hi = min(counts), max(counts)
    out: dict[str, Any] = {}
    for stat in ("ms_per_step", "ms_min"):
        tag = "median" if stat == "ms_per_step" else "min"
        if ("ebv_full", lo) in by and ("fc", lo) in by:
            out[f"ebv_full_over_fc_at_min_classes_{tag}"] = by[("ebv_full", lo)][stat] / by[("fc", lo)][stat]
        if ("ebv_sampled", lo) in by:
            ratio = by[("ebv_sampled", hi)][stat] / by[("ebv_sampled", lo)][stat]
            out[f"ebv_sampled_max_over_min_classes_{tag}"] = ratio
    if ("ebv_full", lo) in by and ("fc", lo) in by:
        macs = by[("ebv_full", lo)]["mmac_per_step"] / by[("fc", lo)]["mmac_per_step"]
        out["ebv_full_over_fc_at_min_classes_mac_ratio"] = macs
    for m in ("ebv_full", "ebv_sampled"):
        if (m, lo) in by:
            out[f"{m}_params_constant"] = len({by[(m, c)]["trainable_params"] for c in counts}) == 1
    return out


def _table(result: dict[str, Any]) -> str:
    head = (f"{'classes':>8} {'method':<12} {'ms/step':>9} {'min':>8} {'p25-p75':>17} {'1st ms':>8} {'scored':>7} "
            f"{'MMAC':>8} {'params':>10} {'opt MB':>7} {'peak MB':>8}")
    lines = [head, "-" * len(head)]
    for r in result["results"]:
        mem = "n/a" if r["peak_memory_bytes"] is None else f"{r['peak_memory_bytes'] / 2**20:.1f}"
        lines.append(
            f"{r['classes']:>8} {r['method']:<12} {r['ms_per_step']:>9.2f} {r['ms_min']:>8.2f} "
            f"{r['ms_p25']:>8.2f}-{r['ms_p75']:<8.2f} {r['first_step_ms']:>8.1f} {r['classes_scored']:>7} "
            f"{r['mmac_per_step']:>8.1f} {r['trainable_params']:>10,} "
            f"{r['optimizer_state_bytes'] / 2**20:>7.2f} {mem:>8}"
        )
    for key, value in result["checks"].items():
        lines.append(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    """Entry point of ``ebv-cl bench head``; prints a table or, with ``--json``, one JSON object."""
    result = run(args)
    print(json.dumps(result) if args.json else _table(result))
    return 0
