"""How many dimensions a bank gets when the user does not say.

A bank of ``n`` vectors in ``d >= n`` dimensions can be exactly orthogonal, and then a linear projection onto it
is as expressive as a learned ``n``-way linear classifier (any ``n x f`` weight matrix ``V`` is ``B W`` with
``W = B^T V``). With ``d`` far below ``n`` the class vectors are only near-orthogonal and the classifier's
weights are confined to a fixed ``d``-dimensional subspace: on Omniglot's 964 classes a 128-dimensional bank
made the EBV head memorise (training accuracy up, held-out drawings and one-shot transfer down) where a
1,024-dimensional one fitted faster than FC and transferred better (README, "EBV head recipe"). The EBV paper
itself uses ``d = n`` for ImageNet-1K (``d = 1000``, its best dimension in its Table 2) and iNaturalist
(``d = 8142``).
"""

from __future__ import annotations

DEFAULT_DIM_CAP = 1024
"""The largest dimension chosen by default: the EBV paper's ImageNet-1K setting (1,000), rounded up.

Beyond it banks are packed (``n > d``); very large banks (10^5 classes and more) should set their dimension
explicitly, trading memory (``n x d`` floats, unless a sequence-code bank) against coherence.
"""


def default_bank_dim(n: int, feature_dim: int, *, cap: int = DEFAULT_DIM_CAP) -> int:
    """The bank dimension used when none is given: ``max(feature_dim, min(n, cap))``.

    Args:
        n: Vectors in the bank (the number of classes it must hold).
        feature_dim: Size of the backbone's features (the dimension never goes below it).
        cap: The largest dimension chosen for ``n`` alone (default ``DEFAULT_DIM_CAP``, 1,024).

    Returns:
        ``n`` when ``feature_dim <= n <= cap`` (an orthogonal bank), ``cap`` for larger ``n``, and
        ``feature_dim`` when that is larger still.

    Raises:
        ValueError: if ``n``, ``feature_dim`` or ``cap`` is not a positive integer.
    """
    for name, value in (("n", n), ("feature_dim", feature_dim), ("cap", cap)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    return max(feature_dim, min(n, cap))
