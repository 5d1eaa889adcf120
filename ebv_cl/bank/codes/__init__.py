"""Code banks: rows that are cyclic shifts of +-1 sequences of a sequence family (Gold, Kasami), stored as a
formula (family, m, feedback polynomial, N, dim) and computed on demand.

``SequenceCode`` is the formula and the row map; ``choose_code`` picks the family and length for (N, dim);
``code_coherence`` / ``code_statistics`` compute the coherence from the structure. See ``families`` for the
member order and ``code`` for the row order.
"""

from .choose import CodeChoice, choose_code, code_candidates
from .code import PADDINGS, SequenceCode
from .coherence import CodeCoherence, code_coherence, code_statistics, sample_check
from .families import FAMILIES, build_family, nominal_max_abs_sum

__all__ = [
    "CodeChoice",
    "CodeCoherence",
    "FAMILIES",
    "PADDINGS",
    "SequenceCode",
    "build_family",
    "choose_code",
    "code_candidates",
    "code_coherence",
    "code_statistics",
    "nominal_max_abs_sum",
    "sample_check",
]
