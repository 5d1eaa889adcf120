"""Generating banks of unit vectors with small coherence: exact constructions and three optimisers.

``generate_vectors(n, dim, method=...)`` is the entry point (``EBVBank.generate`` and
``ebv-cl bank generate`` call it); ``method_names()`` lists the registered methods; ``random_bank`` is the
baseline. ``kerdock.KerdockDecoder`` searches a Kerdock bank with fast Walsh-Hadamard transforms.
"""

from .baseline import random_bank
from .budget import DEFAULT_TIME_BUDGET
from .kerdock import KerdockDecoder
from .methods import GENERATORS, GenerationResult, choose_method, generate_vectors, method_names

__all__ = [
    "DEFAULT_TIME_BUDGET",
    "GENERATORS",
    "GenerationResult",
    "KerdockDecoder",
    "choose_method",
    "generate_vectors",
    "method_names",
    "random_bank",
]
