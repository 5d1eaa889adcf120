"""``ebv``: the Equiangular Basis Vector head (EBV paper, eq. 6).

A trainable projection maps backbone features to the bank's dimension d (its size does not depend on the
number of classes); the projected features are L2-normalised and scored by cosine against the bank vectors of
the allocated classes, divided by a temperature: ``logits = normalize(W x + b) @ V[:C].T / temperature``.
Column ``j`` is slot ``j`` of the bank (``SlotAllocator``), so adding classes never moves a column and never
adds a trainable parameter. The bank is held as a non-persistent buffer (the bank file is the source of
truth and a 10^5 x 512 bank would add 200 MB to every checkpoint); its sha256 is stored in the extra state and
checked when a state dict is loaded.

For very many classes ``training_loss`` can use a sampled softmax (see ``ebv_cl.heads.sampling``): the
batch's positives, the ``hard_negatives`` hardest other classes and ``sampled_negatives`` uniformly drawn
classes, shared by the whole batch. Hard negatives are ranked by cosine among candidates that come either
from the bank itself (``hard_negative_mode="bank"``: the bank vectors nearest to each positive's vector, found
once per class by an exact blocked search and cached, so a step costs nothing extra once every class was
seen; with a fixed bank these are the classes an embedding near its target is most confused with), or from
an exact search with the current embeddings every step (``"scan"``: a float32 blocked search, ``B x N x d``
without gradient, linear in N; ``"index"``: the same exact top-k through ``ebv_cl.index.BankIndex``, whose
certified low-precision path is faster on the CPU). The per-step cost of the sampled loss is ``B x (B + hard + sampled) x d``.

A code bank (``bank.code`` set: rows stored as a formula, see ``ebv_cl.bank.codes``) is never materialised: the
sampled loss fetches the rows of its class set with ``bank.rows``, every hard-negative mode searches through
``BankIndex`` (its structured path ``fft``; mode ``"bank"`` takes the raw structured scores' top-k,
``BankIndex.candidate_slots``: good candidates, not certified nearest rows, since a Kasami bank ties thousands of
rows with the 9th best and the exact search re-ranks them all), ``predict`` is the index's exact top-1 and full
logits are computed over blocks of rows (the allocated classes' rows are cached only while they fit 64 MiB).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from ..bank import EBVBank
from ..errors import ConfigError
from .base import ClassifierHead
from .projection import INITS as _INITS, PROJECTIONS as _PROJECTIONS
from .projection import default_projection as _default_projection, make_projection as _make_projection
from .sampling import blocked_topk, draw_excluding, hardest_candidates

__all__ = ["EBVHead"]


def _held_vectors(bank: Any) -> torch.Tensor:
    """What the head holds of the bank: its vectors, or for a code bank an empty ``(0, dim)`` device marker."""
    return bank.vectors if getattr(bank, "code", None) is None else torch.empty(0, bank.dim)

_HARD_MODES = ("bank", "scan", "index")
_CANDIDATES = 8  # hard-negative candidates kept per class ("bank") or per sample ("scan")
_NORM_EPS = 1e-12
_ROW_CACHE_BYTES = 1 << 26  # code banks: cache the allocated classes' rows up to 64 MiB
_ROW_BLOCK = 65536  # code banks: rows per block of the blocked logits


class EBVHead(ClassifierHead):
    """Cosine logits against fixed bank vectors, divided by a temperature.

    The default recipe depends on the bank's size (``projection="auto"``, chosen on validation data by
    ``benchmarks/bench_head_recipe.py``): from ``MLP_MIN_CLASSES`` (200) bank vectors on, an MLP projection 1024
    wide with batch norm before the L2 normalisation; below, the EBV paper's linear projection without it. The
    temperature is 0.07 either way. What matters most with many classes is the bank's dimension:
    with at least one dimension per class (``bank.dim >= n``, an orthogonal bank, the EBV paper's own setting
    for ImageNet-1K) this head fits Omniglot's 964 background characters faster than FC and its features
    transfer better; with 128 dimensions it memorises (README, "EBV head recipe"). ``ebv_cl.bank.default_bank_dim``
    is the rule the CLI uses when ``bank.dim`` is not given.

    Args:
        in_features: Size of the backbone features.
        bank: The fixed bank; its ``n`` is the capacity and its ``dim`` the projection size.
        temperature: Softmax temperature tau of eq. 6 (> 0).
        bias: Whether the projection has a bias.
        projection: ``"auto"`` (default: ``"mlp"`` when the bank holds at least 200 vectors,
            ``MLP_MIN_CLASSES``, else ``"linear"``), ``"mlp"`` (``Linear-BN-ReLU-Linear``, ``hidden`` wide),
            ``"linear"`` (or ``True``: one ``Linear``, the EBV paper's head), or ``"none"`` (or ``False``) when
            the backbone already ends in ``bank.dim`` features (its last layer is then the projection).
            ``projection_kind`` is the resolved choice.
        hidden: Hidden width of the MLP projection (default 1024).
        projection_init: ``"default"`` (PyTorch's) or ``"orthogonal"`` projection weights.
        dropout: Dropout probability on the MLP projection's hidden layer (``[0, 1)``, default 0; MLP only).
        feature_bn: Batch-normalise the projected features before the L2 normalisation (default ``None``: on
            with the MLP projection, off otherwise).
        learn_scale: Learn the logit scale (NormFace), starting at ``1 / temperature``; else it is fixed.
        margin: Additive cosine margin m of CosFace, subtracted from the target's cosine in ``training_loss``
            only (``[0, 1)``, default 0).
        label_smoothing: Label smoothing of the training cross-entropy (``[0, 1)``, default 0).
        sampled_negatives: ``None`` (default) for the full softmax; otherwise the number of uniformly sampled
            negative classes per step (the sampled softmax is used only when it would not cover all classes).
        hard_negatives: How many hardest negative classes join the sampled set per step, ranked by cosine
            among the candidates (8 per positive class or per sample, see ``hard_negative_mode``).
        hard_negative_mode: ``"bank"``: candidates are the 8 bank vectors nearest to each positive's vector
            (exact blocked search once per class, cached; for a code bank the structured index's raw top-k, within
            its error bound of exact); ``"scan"``: the 8 top-scoring classes of each
            embedding, by an exact blocked search every step; ``"index"``: as ``"scan"`` through a
            ``BankIndex`` (exact ``flat`` kind) built on first use.
        seed: Seed of the head's own generator for the random sample (the global RNG is not touched).
        search_block: Bank rows scored at once by the hard-negative search.
        check_finite: Check inputs for NaN/inf on every call.

    Raises:
        TypeError: if ``bank`` is not an ``EBVBank``.
        ValueError: on a non-positive temperature, a negative count, a margin or label smoothing outside
            ``[0, 1)``, a ``dropout`` outside ``[0, 1)`` or without the MLP, or ``projection=False`` with
            ``in_features != bank.dim``.
        ConfigError: on an unknown ``hard_negative_mode``, ``projection`` or ``projection_init``.
    """

    kind = "ebv"

    def __init__(
        self,
        in_features: int,
        bank: EBVBank,
        *,
        temperature: float = 0.07,
        bias: bool = True,
        projection: bool | str = "auto",
        hidden: int | None = None,
        projection_init: str = "default",
        dropout: float = 0.0,
        feature_bn: bool | None = None,
        learn_scale: bool = False,
        margin: float = 0.0,
        label_smoothing: float = 0.0,
        sampled_negatives: int | None = None,
        hard_negatives: int = 64,
        hard_negative_mode: str = "bank",
        seed: int = 0,
        search_block: int = 16384,
        check_finite: bool = False,
    ) -> None:
        if not isinstance(bank, EBVBank):
            raise TypeError(f"bank must be an EBVBank, got {type(bank).__name__}")
        super().__init__(in_features, capacity=bank.n, check_finite=check_finite)
        if not float(temperature) > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        if sampled_negatives is not None and int(sampled_negatives) < 0:
            raise ValueError(f"sampled_negatives must be None or >= 0, got {sampled_negatives!r}")
        if int(hard_negatives) < 0:
            raise ValueError(f"hard_negatives must be >= 0, got {hard_negatives!r}")
        if hard_negative_mode not in _HARD_MODES:
            raise ConfigError(f"hard_negative_mode must be one of {_HARD_MODES}, got {hard_negative_mode!r}")
        self.temperature = float(temperature)
        if isinstance(projection, bool):
            projection = "linear" if projection else "none"
        if projection == "auto":
            projection = _default_projection(bank.n)
        if projection not in _PROJECTIONS:  # make_projection checks the rest
            raise ConfigError(f"projection must be a bool, 'auto' or one of {_PROJECTIONS}, got {projection!r}")
        if feature_bn is None:
            feature_bn = projection == "mlp"
        if not 0.0 <= float(margin) < 1.0:
            raise ValueError(f"margin must be in [0, 1), got {margin!r}")
        if not 0.0 <= float(label_smoothing) < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
        self.projection_kind = projection
        self.projection_init = projection_init
        self.margin = float(margin)
        self.label_smoothing = float(label_smoothing)
        self.sampled_negatives = None if sampled_negatives is None else int(sampled_negatives)
        self.hard_negatives = int(hard_negatives)
        self.hard_negative_mode = hard_negative_mode
        self.search_block = int(search_block)
        self.bank_dim = bank.dim
        self.bank_sha256 = bank.sha256()
        self._bank = bank
        self._index: Any = None
        self.projection = _make_projection(projection, self.in_features, bank.dim, bias=bias, hidden=hidden,
                                           init=projection_init, dropout=dropout)
        self.dropout = float(dropout)
        self.hidden = self.projection[0].out_features if projection == "mlp" else None
        self._bias = bool(bias) and projection != "none"
        self.feature_bn = nn.BatchNorm1d(bank.dim) if feature_bn else None
        if learn_scale:
            self.logit_scale = nn.Parameter(torch.tensor(1.0 / self.temperature))
        else:
            self.logit_scale = None
        self.register_buffer("bank_vectors", _held_vectors(bank), persistent=False)
        self.register_buffer("_neighbors", torch.empty(0, _CANDIDATES, dtype=torch.int64), persistent=False)
        self.register_buffer("_neighbor_scores", torch.empty(0, _CANDIDATES), persistent=False)
        self._generator = torch.Generator().manual_seed(int(seed))
        self._code = getattr(bank, "code", None) is not None
        self._row_cache: tuple[int, torch.Tensor] | None = None
        self.last_class_set_size: int | None = None
        """Classes scored by the last sampled ``training_loss`` (``None`` before the first one)."""

    @property
    def class_vectors(self) -> torch.Tensor:
        """The bank vectors of the allocated classes, ``(num_classes, dim)``, row ``j`` = column ``j``.

        For a code bank these rows are computed (``bank.rows``) and cached only while they fit 64 MiB.
        """
        if not self._code:
            return self.bank_vectors[: self.num_classes]
        cached = self._row_cache
        if cached is not None and cached[0] == self.num_classes and cached[1].device == self.bank_vectors.device:
            return cached[1]
        rows = self._rows(slice(0, self.num_classes))
        if rows.numel() * rows.element_size() <= _ROW_CACHE_BYTES:
            self._row_cache = (self.num_classes, rows)
        return rows

    def _rows(self, classes: torch.Tensor | slice) -> torch.Tensor:
        """Bank rows of ``classes`` (columns) on the head's device; a code bank computes only those rows."""
        if not self._code:
            return self.bank_vectors[classes] if isinstance(classes, slice) else self.bank_vectors.index_select(0, classes)
        index = classes if isinstance(classes, slice) else classes.detach().cpu()
        return self._bank.rows(index).to(self.bank_vectors.device)

    @property
    def scale(self) -> float | torch.Tensor:
        """The logit scale: the learned ``logit_scale`` with ``learn_scale``, else ``1 / temperature``."""
        return 1.0 / self.temperature if self.logit_scale is None else self.logit_scale

    def _project(self, features: torch.Tensor) -> torch.Tensor:
        z = self.projection(features)
        return z if self.feature_bn is None else self.feature_bn(z)

    def embed(self, features: torch.Tensor) -> torch.Tensor:
        """The L2-normalised projected embeddings ``(B, dim)`` of features ``(B, in_features)``."""
        return nn.functional.normalize(self._project(features), dim=1)

    def _scaled_embed(self, x: torch.Tensor) -> torch.Tensor:
        # normalize(z) * scale with one (B, 1) factor: cheaper than normalize then scaling (B, C) logits.
        z = self._project(x)
        norm = torch.linalg.vector_norm(z, dim=1, keepdim=True).clamp_min(_NORM_EPS)
        return z * (self.scale / norm)

    def _cross_entropy(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        # CosFace: the target's cosine minus the margin, i.e. its logit minus margin * scale (training only).
        if self.margin:
            logits = logits.scatter_add(1, targets[:, None], (-self.margin * self.scale) * logits.new_ones(len(targets), 1))
        return nn.functional.cross_entropy(logits, targets, label_smoothing=self.label_smoothing)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        if self._code and self.num_classes * self.bank_dim * 4 > _ROW_CACHE_BYTES:
            return self._blocked_logits(self._scaled_embed(x))
        return self._scaled_embed(x) @ self.class_vectors.T

    def _blocked_logits(self, z: torch.Tensor) -> torch.Tensor:
        # code banks beyond the row cache: the logits over blocks of rows, never all rows at once
        c = self.num_classes
        blocks = [z @ self._rows(slice(j0, min(c, j0 + _ROW_BLOCK))).T for j0 in range(0, c, _ROW_BLOCK)]
        return torch.cat(blocks, dim=1)

    @torch.no_grad()
    def predict_columns(self, features: torch.Tensor) -> torch.Tensor:
        """The predicted column per row; for a code bank the exact top-1 of ``BankIndex`` (no logits formed)."""
        if not self._code:
            return super().predict_columns(features)
        z = self.embed(self._check_features(features)).detach()
        return self._bank_index(z.device).search_slots(z, 1)[1][:, 0].to(z.device)

    def _grow(self, old: int, new: int) -> None:
        # New classes can be nearer neighbours than the cached ones: drop the cache.
        shape = (new, _CANDIDATES)
        self._neighbors = torch.full(shape, -1, dtype=torch.int64, device=self.bank_vectors.device)
        self._neighbor_scores = torch.full(shape, float("-inf"), device=self.bank_vectors.device)
        self._row_cache = None
        return None

    def uses_sampling(self, batch_size: int) -> bool:
        """Whether ``training_loss`` samples classes (rather than the full softmax) at the current size."""
        if self.sampled_negatives is None:
            return False
        return self.sampled_negatives + self.hard_negatives + min(batch_size, self.num_classes) < self.num_classes

    def training_loss(self, features: torch.Tensor, target_columns: torch.Tensor) -> torch.Tensor:
        """Cross-entropy over all classes, or over a sampled class set when ``sampled_negatives`` is set.

        The sampled set holds the batch's positives, the ``hard_negatives`` hardest other classes and
        ``sampled_negatives`` uniformly drawn ones; the full softmax is used whenever that set would hold
        every class.

        Args:
            features: ``(B, in_features)`` float features.
            target_columns: ``(B,)`` int64 columns of the true classes.

        Returns:
            The scalar mean loss.
        """
        x = self._check_features(features)
        targets = self._check_targets(target_columns, x.shape[0])
        if not self.uses_sampling(x.shape[0]):
            return self._cross_entropy(self._logits(x), targets)
        z = self._scaled_embed(x)
        positives, local = targets.unique(return_inverse=True)  # positives first: target j is column local[j]
        hard = self._hard_negatives(z, targets, positives)
        taken = torch.cat([positives, hard])
        drawn = draw_excluding(self.num_classes, taken.sort().values, self.sampled_negatives or 0,
                               generator=self._generator)
        class_set = torch.cat([taken, drawn])
        self.last_class_set_size = int(class_set.numel())
        return self._cross_entropy(z @ self._rows(class_set).T, local)

    def loss_from_logits(self, logits: torch.Tensor, target_columns: torch.Tensor) -> torch.Tensor:
        """``training_loss`` from the logits ``forward(features)`` already formed (for methods that need them).

        With sampling the class set is drawn as in ``training_loss`` (positives, hard negatives, uniform
        sample) and the cross-entropy is taken over those columns of ``logits``; the ``scan`` and ``index``
        modes rank the candidates by these logits (the same order as their exact search). For the same draw
        the value equals ``training_loss``; the full logits were paid for by the caller.
        """
        logits = self._check_logits(logits)
        targets = self._check_targets(target_columns, logits.shape[0])
        if not self.uses_sampling(logits.shape[0]):
            return self._cross_entropy(logits, targets)
        positives, local = targets.unique(return_inverse=True)
        if self.hard_negatives == 0:
            hard = targets.new_empty(0)
        elif self.hard_negative_mode == "bank":
            hard = self._hard_negatives(logits, targets, positives)  # "bank" reads only the device of its first argument
        else:
            scores = logits.detach().scatter(1, targets[:, None], float("-inf"))
            scores, idx = scores.topk(min(_CANDIDATES, self.num_classes), dim=1)
            idx = idx.masked_fill(torch.isinf(scores), -1)
            hard = hardest_candidates(idx, scores, positives, self.hard_negatives)
        taken = torch.cat([positives, hard])
        drawn = draw_excluding(self.num_classes, taken.sort().values, self.sampled_negatives or 0,
                               generator=self._generator)
        class_set = torch.cat([taken, drawn])
        self.last_class_set_size = int(class_set.numel())
        return self._cross_entropy(logits.index_select(1, class_set), local)

    @torch.no_grad()
    def _hard_negatives(self, z: torch.Tensor, targets: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        # classes: the sorted distinct targets
        if self.hard_negatives == 0:
            return targets.new_empty(0)
        if self._code:
            return self._code_hard_negatives(z, classes)
        vectors = self.class_vectors
        if self.hard_negative_mode == "scan":
            scores, idx = blocked_topk(z.detach(), vectors, _CANDIDATES, exclude=targets, block=self.search_block)
            return hardest_candidates(idx, scores, classes, self.hard_negatives)
        if self.hard_negative_mode == "index":
            k = min(_CANDIDATES + 1, self.num_classes)  # + 1: the positive itself is usually the nearest
            scores, idx = self._bank_index(z.device).search_slots(z.detach(), k)
            return hardest_candidates(idx.to(z.device), scores.to(z.device), classes, self.hard_negatives)
        unfilled = self._neighbors[classes, 0] == -1
        if bool(unfilled.any()):
            missing = classes[unfilled]
            scores, idx = blocked_topk(vectors[missing], vectors, _CANDIDATES, exclude=missing, block=self.search_block)
            self._neighbors[missing] = idx
            self._neighbor_scores[missing] = scores
        idx, scores = self._neighbors[classes], self._neighbor_scores[classes]
        return hardest_candidates(idx, scores, classes, self.hard_negatives)

    def _code_hard_negatives(self, z: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        # code banks: every mode searches through BankIndex (structured path fft); "bank" still caches per class
        k = min(_CANDIDATES + 1, self.num_classes)  # + 1: the positive itself is usually the nearest
        if self.hard_negative_mode != "bank":
            scores, idx = self._bank_index(z.device).search_slots(z.detach(), k)
            return hardest_candidates(idx.to(z.device), scores.to(z.device), classes, self.hard_negatives)
        unfilled = self._neighbors[classes, 0] == -1
        if bool(unfilled.any()):
            missing = classes[unfilled]
            # candidates, not certified neighbours: the raw structured scores' top-k (a Kasami bank ties thousands
            # of rows with the k-th best, which the exact search would re-rank in float64)
            scores, idx = self._bank_index(z.device).candidate_slots(self._rows(missing), k)
            scores, idx = scores.to(z.device), idx.to(z.device)
            scores = scores.masked_fill(idx == missing[:, None], float("-inf"))
            if k < _CANDIDATES + 1:  # fewer classes than candidates: pad with none
                pad = _CANDIDATES + 1 - k
                scores = nn.functional.pad(scores, (0, pad), value=float("-inf"))
                idx = nn.functional.pad(idx, (0, pad), value=-1)
            order = scores.argsort(dim=1, descending=True, stable=True)[:, :_CANDIDATES]
            scores = scores.gather(1, order)
            idx = idx.gather(1, order).masked_fill(torch.isinf(scores), -1)
            self._neighbors[missing] = idx
            self._neighbor_scores[missing] = scores.to(self._neighbor_scores.dtype)
        idx, scores = self._neighbors[classes], self._neighbor_scores[classes]
        return hardest_candidates(idx, scores, classes, self.hard_negatives)

    def _bank_index(self, device: torch.device) -> Any:
        from ..index import BankIndex  # only this mode needs the index (and FAISS)

        index = self._index
        if index is None or index.allocator is not self.slots or index.device != device:
            index = self._index = BankIndex(self._bank, self.slots, kind="flat", device=device)
        return index

    def __deepcopy__(self, memo: dict[int, Any]) -> "EBVHead":
        """A deep copy that shares the fixed, never-written bank instead of copying it.

        Avalanche's LwF and DER deep-copy the model every experience; at 10^5 x 512 the bank is 200 MB. The copy
        gets its own projection, allocator, caches and generator. Moving either copy to another device
        (``.to``) gives that copy its own bank tensor and leaves the other alone.
        """
        memo.setdefault(id(self.bank_vectors), self.bank_vectors)
        memo.setdefault(id(self._bank), self._bank)
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        new.__setstate__(copy.deepcopy(self.__getstate__(), memo))
        return new

    def _config(self) -> dict[str, Any]:
        return {
            **super()._config(),
            "bank_dim": self.bank_dim,
            "bank_sha256": self.bank_sha256,
            "temperature": self.temperature,
            "projection": self.projection_kind != "none" if self.projection_kind != "mlp" else "mlp",
            "bias": self._bias,
            # Keys added with the recipe options appear only when set, so older state dicts still load.
            **({"hidden": self.hidden} if self.hidden is not None else {}),
            **({"feature_bn": True} if self.feature_bn is not None else {}),
            **({"learn_scale": True} if self.logit_scale is not None else {}),
        }

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, bank=({self.capacity}, {self.bank_dim}), temperature={self.temperature}"
