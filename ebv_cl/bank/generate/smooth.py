"""``smooth``: Adam in float64 on a log-sum-exp soft maximum of ``|cos|`` over every pair, for small banks.

Objective of one bank: ``(1/beta) log sum_{i<j} exp(beta |c_ij|)``, a smooth upper bound of the coherence that
tends to it as the sharpness ``beta`` grows. ``beta = s / c`` where ``c`` is the current coherence and ``s``
rises geometrically from ``s_start`` to ``s_end`` over the budget (early on many pairs push, at the end only
the worst few). The gradient is analytic (softmax weights times ``sign(c_ij)``, projected onto the sphere);
Adam with a geometrically decaying step size moves the rows, which are renormalised after every step, so the
step size is an angle.

A plateau (the budget's patience) before the end of the schedule does not stop the run: the schedule then
runs to its end over ``FINISH_STEPS`` steps (a plateau at low sharpness is the optimum of the soft maximum,
not of the coherence).

Several independent starts run as one batched product (``restarts`` banks of ``n x dim``): for small ``n``
a step costs about the same for 1 or 30 banks, and the best bank over all starts is returned. Tracking every
pair costs ``O(n^2 d)`` per step, so ``auto`` uses this method for small ``n`` only (``SMOOTH_MAX_N``) and
the near-pair method ``sparse`` above.

Measured against the plain reference (one start, autograd Adam, fixed schedule) at equal wall time in
``benchmarks/bench_packings.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .budget import Budget, Tracker
from .neighbours import coherence

__all__ = ["MAX_N", "SmoothConfig", "smooth_vectors", "default_restarts", "default_sharpness"]

FINISH_STEPS = 1000  # steps of the final anneal after an early plateau
MAX_N = 4096  # n x n float64 products (several live at once): about 0.5 GB at this size


@dataclass(frozen=True)
class SmoothConfig:
    """Settings of the smooth generator (the defaults are the measured best in ``bench_packings``).

    Args:
        restarts: Independent starts run together (default: ``default_restarts(n)``).
        lr: Adam step (radians, roughly) at the start.
        lr_end: Adam step at the end of the budget.
        s_start: Sharpness ``beta * coherence`` at the start.
        s_end: Sharpness at the end (default: ``default_sharpness(n)``).
        betas: Adam's moment decays.
    """

    restarts: int | None = None
    lr: float = 0.01
    lr_end: float = 1e-4
    s_start: float = 2.0
    s_end: float | None = None
    betas: tuple[float, float] = (0.9, 0.999)


def default_restarts(n: int) -> int:
    """Starts per run: about ``2^16 / n^2`` (so a batched step stays cheap), between 1 and 32."""
    return int(max(1, min(32, (1 << 16) // max(1, n * n))))


def default_sharpness(n: int) -> float:
    """Final sharpness: 2e4 for ``n <= 32`` (thousands of steps; it buys the last 1e-4 of the optimum: at
    (d, N) = (3, 5) and (4, 11) 2e3 ends 1.3e-4 and 2.1e-4 above it), else 2e3 (few hundred steps; at
    (120, 256) and (23, 276) with 10 s, 2e3 ended 3% and 0.5% lower than 2e4)."""
    return 2e4 if n <= 32 else 2e3


def _random_starts(restarts: int, n: int, dim: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(int(seed))
    x = torch.randn(restarts, n, dim, generator=gen, dtype=torch.float64)
    return torch.nn.functional.normalize(x, dim=2)


def _gradient(w: torch.Tensor, s: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Tangent gradient of the soft maximum of each bank and the exact coherence of each bank.

    ``w``: ``(r, n, d)`` unit rows. The sharpness is ``s / coherence`` per bank, so the gradient does not
    depend on how far a bank is from the optimum, only on which pairs are the worst.
    """
    c = w @ w.transpose(1, 2)
    a = c.abs()
    a.diagonal(dim1=1, dim2=2).fill_(-1.0)
    worst = a.amax(dim=(1, 2))
    beta = (s / worst.clamp_min(1e-12)).view(-1, 1, 1)
    weights = torch.exp(beta * (a - worst.view(-1, 1, 1)))  # the diagonal underflows to ~0
    weights.diagonal(dim1=1, dim2=2).zero_()
    weights /= weights.sum(dim=(1, 2), keepdim=True)
    g = (weights * torch.sign(c)) @ w  # symmetric: both ends of each pair
    g -= (g * w).sum(dim=2, keepdim=True) * w
    return g, worst


def smooth_vectors(
    n: int,
    dim: int,
    *,
    seed: int,
    budget: Budget,
    device: torch.device,
    progress: bool = False,
    config: SmoothConfig | None = None,
) -> tuple[torch.Tensor, dict]:
    """Minimise the annealed log-sum-exp soft maximum of ``|cos|`` from several starts at once.

    Args:
        n: Number of vectors (>= 2).
        dim: Dimension.
        seed: Seed of the random starts (the run is deterministic for a step budget).
        budget: Stopping rules (target alpha, time, steps, plateau).
        device: Where the optimisation runs.
        progress: Show a tqdm bar with the current coherence.
        config: Method settings (defaults: ``SmoothConfig()``).

    Returns:
        ``(vectors, info)``: the best ``(n, dim)`` float32 CPU bank seen over all starts and the run record.

    Raises:
        ValueError: if ``n > MAX_N``.
    """
    if n > MAX_N:
        raise ValueError(
            f"method 'smooth' tracks every pair in memory and holds at most n = {MAX_N} vectors, got n = {n}; "
            "use 'sparse' (near pairs) or 'auto'"
        )
    cfg = config or SmoothConfig()
    restarts = cfg.restarts or default_restarts(n)
    s_end = cfg.s_end or default_sharpness(n)
    w = _random_starts(restarts, n, dim, seed).to(device)
    m = torch.zeros_like(w)
    v = torch.zeros_like(w)
    b1, b2 = cfg.betas
    tracker = Tracker(budget, progress=progress, desc=f"smooth n={n} d={dim}")
    best_start = 0
    finish: tuple[int, float] | None = None  # (step, fraction) where a plateau sent the schedule to its end
    try:
        while True:
            frac = tracker.fraction()
            if finish is not None:
                frac = max(frac, min(1.0, finish[1] + (1.0 - finish[1]) * (tracker.step - finish[0]) / FINISH_STEPS))
            s = cfg.s_start * (s_end / cfg.s_start) ** frac
            lr = cfg.lr * (cfg.lr_end / cfg.lr) ** frac
            g, worst = _gradient(w, s)
            i = int(worst.argmin())
            if float(worst[i]) < tracker.best_coherence:
                best_start = i
            tracker.record(float(worst[i]), w[i])
            if tracker.should_stop():
                if tracker.stop_reason != "plateau" or finish is not None or frac >= 0.99:
                    break
                # a plateau at a low sharpness is the soft maximum's optimum, not the coherence's: anneal to the
                # end over FINISH_STEPS steps instead of stopping
                finish = (tracker.step, frac)
                tracker.reset_plateau()
            t = tracker.step + 1
            m.mul_(b1).add_(g, alpha=1.0 - b1)
            v.mul_(b2).addcmul_(g, g, value=1.0 - b2)
            step = (m / (1.0 - b1**t)) / ((v / (1.0 - b2**t)).sqrt_().add_(1e-12))
            w = torch.nn.functional.normalize(w - lr * step, dim=2)
            tracker.advance()
        tracker.best_coherence = coherence(tracker.best_vectors)  # of the float32 rows returned
    finally:
        tracker.close()
    info = tracker.info(
        objective="log-sum-exp of |cos| over all pairs, sharpness s/c annealed "
        f"{cfg.s_start:g}->{s_end:g}",
        restarts=restarts,
        best_start=best_start,
        lr=cfg.lr,
        lr_end=cfg.lr_end,
    )
    return tracker.best_vectors, info
