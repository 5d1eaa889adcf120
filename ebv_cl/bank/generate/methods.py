"""The registry of bank generation methods and ``generate_vectors``, the one entry point.

Every method is registered under the name that the API, YAML files and ``ebv-cl bank generate --method``
share: ``allpairs`` (the paper's Algorithm 1), ``sparse`` (nearest-pair power energy, linear cost per step),
``smooth`` (every pair, batched starts, for small N), the exact constructions ``orthogonal``, ``simplex``,
``etf`` and ``kerdock``, the code banks ``gold`` and ``kasami`` (no vectors: ``GenerationResult.code`` holds the
formula), and ``auto``, which picks:

1. ``orthogonal`` when ``n <= dim`` (coherence 0);
2. ``simplex`` when ``n == dim + 1`` (coherence 1/dim, the Welch bound);
3. ``etf`` when a catalogued real equiangular tight frame in ``R^dim`` holds ``n`` vectors and its coherence
   is at most ``ETF_BOUND_RATIO`` times the bound for ``n`` (with ``n`` equal to the frame's size the ratio is
   1: the frame is optimal). Measured with 10 s of ``smooth`` on subsets (coherence over the bound, frame
   against ``smooth``): (d, N) = (23, 200) 1.017 / 1.356, (120, 230) 1.054 / 1.086, (28, 56) 1.060 / 1.084,
   (7, 20) 1.066 / 1.066, but (6, 12) 1.106 / 1.049, (28, 50) 1.128 / 1.080, (5, 8) 1.139 / 1.123;
4. ``kerdock`` when ``dim`` is a power of 4, ``n <= dim^2/2 + dim`` and its coherence ``1/sqrt(dim)`` is at
   most ``KERDOCK_BOUND_RATIO`` (1.18) times the Welch/Levenstein bound. Below that many vectors the optimiser
   does better than the fixed ``1/sqrt(dim)``: measured at d = 64 with 30 s of ``sparse``, 0.106 / 0.122 /
   0.138 at N = 150 / 200 / 300 against Kerdock's 0.125 (bound ratios 1.32 / 1.21 / 1.13);
5. a code bank (``gold`` or ``kasami``, ``ebv_cl.bank.codes``: cyclic shifts of Gold/Kasami sequences, stored as a
   formula) when the best code for (n, dim) is below ``expected_sparse_ratio(n)`` times the Welch/Levenstein
   bound: an optimistic figure for what ``sparse`` reaches in 60 s (1.1x at N = 1000, 2.0x at 10^4, 3.5x at
   10^5, measured on this project's CPU), so N = 1000 keeps ``sparse`` and 10^4 .. 10^7 get codes;
6. ``smooth`` (every pair, several starts, Adam on a log-sum-exp) when ``n <= SMOOTH_MAX_N`` (300). Its
   float64 steps cost more than ``sparse``'s: with 20 s each (loaded CPU) the bound ratios were, ``smooth``
   against ``sparse``: (d, N) = (32, 100) 1.13 / 1.27, (64, 150) 1.09 / 1.13, (20, 200) 1.38 / 1.56,
   (40, 250) 1.27 / 1.29, (50, 300) 1.28 / 1.28, but (64, 500) 1.50 / 1.35, (100, 1000) 1.84 / 1.55;
7. ``sparse`` otherwise. ``allpairs`` is never chosen: below 2048 vectors ``sparse`` tracks every pair too,
   with the same cost per step, and measured lower coherence (N = 1000, d = 128, 20 s: 0.119 against 0.262).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import torch

from ...registry import Registry
from .algebraic import orthogonal_vectors, simplex_vectors
from .allpairs import allpairs_vectors
from .budget import Budget
from .kerdock import is_power_of_four, kerdock_capacity, kerdock_vectors
from .etf import etf_for, etf_vectors
from .smooth import smooth_vectors
from .sparse import sparse_vectors

__all__ = ["GenerationResult", "GENERATORS", "KERDOCK_BOUND_RATIO", "ETF_BOUND_RATIO", "SMOOTH_MAX_N",
           "choose_method", "generate_vectors", "method_names"]

KERDOCK_BOUND_RATIO = 1.18
ETF_BOUND_RATIO = 1.10
SMOOTH_MAX_N = 300


@dataclass
class GenerationResult:
    """A generated bank.

    Attributes:
        vectors: ``(n, dim)`` float32 CPU tensor of unit rows; ``None`` for a code bank.
        method: The concrete method used (never ``"auto"``).
        info: JSON-ready record: steps, seconds, time per step, final coherence, objective, stop reason, ...
    """

    vectors: torch.Tensor | None
    method: str
    info: dict[str, Any] = field(default_factory=dict)
    code: Any = None  # a SequenceCode for the code methods (then ``vectors`` is None: rows are computed on demand)


GENERATORS: Registry[GenerationResult] = Registry(
    "bank generation method", fixed=("n", "dim", "seed", "budget", "device", "progress")
)


def _exact(name: str, vectors: torch.Tensor, info: dict[str, Any] | None = None, **extra: Any) -> GenerationResult:
    from .neighbours import coherence

    record = {"steps": 0, "final_coherence": coherence(vectors), "stop_reason": "exact construction"}
    record.update(info or {})
    record.update(extra)
    return GenerationResult(vectors, name, record)


@GENERATORS.register("orthogonal")
def _orthogonal(n: int, dim: int, *, seed: int, **_: Any) -> GenerationResult:
    return _exact("orthogonal", orthogonal_vectors(n, dim, seed=seed))


@GENERATORS.register("simplex")
def _simplex(n: int, dim: int, *, seed: int, **_: Any) -> GenerationResult:
    return _exact("simplex", simplex_vectors(n, dim, seed=seed))


@GENERATORS.register("kerdock")
def _kerdock(n: int, dim: int, **_: Any) -> GenerationResult:
    vectors, info = kerdock_vectors(n, dim)
    return _exact("kerdock", vectors, info)


@GENERATORS.register("etf")
def _etf(n: int, dim: int, **_: Any) -> GenerationResult:
    vectors, info = etf_vectors(n, dim)
    return _exact("etf", vectors, info)


def _optimised(name: str, run: Callable[..., tuple[torch.Tensor, dict]], patience: int) -> Callable[..., GenerationResult]:
    def factory(n: int, dim: int, *, seed: int, budget: Budget, device: torch.device, progress: bool, **_: Any):
        if n == 1:
            return GenerationResult(orthogonal_vectors(1, dim, seed=seed), name, {"steps": 0, "final_coherence": 0.0})
        vectors, info = run(n, dim, seed=seed, budget=replace(budget, patience=patience), device=device,
                            progress=progress)
        return GenerationResult(vectors.contiguous(), name, info)

    return factory


def _code_method(name: str, families: tuple[str, ...]) -> Callable[..., GenerationResult]:
    def factory(n: int, dim: int, **_: Any) -> GenerationResult:
        import time

        from ..codes import SequenceCode, choose_code, code_coherence

        start = time.perf_counter()
        choice = choose_code(n, dim, families)
        if choice is None:
            raise ValueError(
                f"method {name!r} has no {'/'.join(families)} code with length <= dim={dim} that holds n={n} vectors; "
                f"use a larger dim, fewer vectors, or 'auto'"
            )
        code = SequenceCode(choice.family, choice.m, n, dim)
        coh = code_coherence(code)
        info = {
            "steps": 0,
            "final_coherence": coh.value,
            "coherence_exact": coh.exact,
            "stop_reason": "exact construction",
            "family": code.family,
            "m": code.m,
            "length": code.length,
            "members": code.n_members,
            "seconds": round(time.perf_counter() - start, 4),
        }
        return GenerationResult(None, name, info, code=code)

    return factory


GENERATORS.register("gold")(_code_method("gold", ("gold",)))
GENERATORS.register("kasami")(_code_method("kasami", ("kasami_small", "kasami_large")))
GENERATORS.register("allpairs")(_optimised("allpairs", allpairs_vectors, patience=500))
GENERATORS.register("sparse")(_optimised("sparse", sparse_vectors, patience=50))
GENERATORS.register("smooth")(_optimised("smooth", smooth_vectors, patience=5000))


def choose_method(n: int, dim: int) -> str:
    """The method ``auto`` uses for ``n`` vectors in ``R^dim`` (see the module docstring)."""
    from ..stats import coherence_lower_bound

    if n <= dim:
        return "orthogonal"
    if n == dim + 1:
        return "simplex"
    frame = etf_for(n, dim)
    if frame is not None and frame.coherence <= ETF_BOUND_RATIO * coherence_lower_bound(n, dim) + 1e-12:
        return "etf"
    if is_power_of_four(dim) and n <= kerdock_capacity(dim):
        if 1.0 / math.sqrt(dim) <= KERDOCK_BOUND_RATIO * coherence_lower_bound(n, dim):
            return "kerdock"
    from ..codes.choose import code_method_for

    code_method = code_method_for(n, dim)
    if code_method is not None:
        return code_method
    return "smooth" if n <= SMOOTH_MAX_N else "sparse"


@GENERATORS.register("auto")
def _auto(n: int, dim: int, **kwargs: Any) -> GenerationResult:
    return GENERATORS.create(choose_method(n, dim), n, dim, **kwargs)


def method_names() -> list[str]:
    """Every generation method name, sorted (``auto`` included)."""
    return GENERATORS.names()


def generate_vectors(
    n: int,
    dim: int,
    *,
    method: str = "auto",
    seed: int = 0,
    alpha: float | None = None,
    time_budget: float | None = None,
    max_steps: int | None = None,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> GenerationResult:
    """Generate ``n`` unit vectors in ``R^dim`` with small coherence (largest ``|cos|`` between two of them).

    The optimising methods stop at the first of: ``alpha`` reached, ``time_budget`` seconds, ``max_steps``
    steps, or a plateau; when neither ``time_budget`` nor ``max_steps`` is given the time budget is 60 s. They
    return the best bank seen. The exact constructions ignore the budget.

    Args:
        n: Number of vectors (>= 1).
        dim: Dimension (>= 1).
        method: One of ``method_names()``.
        seed: Seed of a local generator (the global RNG is untouched); with a step budget the result is
            deterministic for a given seed and method (``kerdock`` ignores the seed).
        alpha: Target coherence in (0, 1).
        time_budget: Seconds the optimisation may run (> 0).
        max_steps: Optimisation steps at most (>= 1).
        device: Torch device of the optimisation (``"cpu"``, ``"cuda"``, ...); the result is on the CPU.
        progress: Show a tqdm bar with the current coherence.

    Returns:
        The ``GenerationResult``; ``info["final_coherence"]`` is the exact coherence of ``vectors``.

    Raises:
        TypeError, ValueError: on a bad argument, an unknown method, or more vectors than a construction holds.
    """
    from ...validation import check_positive_int

    n = check_positive_int(n, name="n")
    dim = check_positive_int(dim, name="dim")
    factory = GENERATORS.get(method)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r} ({type(seed).__name__})")
    budget = Budget.create(alpha=alpha, time_budget=time_budget, max_steps=max_steps)
    result = factory(n, dim, seed=seed, budget=budget, device=torch.device(device), progress=progress)
    result.info.setdefault("method", result.method)
    result.info["requested_method"] = method
    return result
