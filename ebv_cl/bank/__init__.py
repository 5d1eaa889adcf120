"""Banks of fixed unit vectors: generation, quality statistics, bounds and the file format.

Code banks (``bank.code`` is a ``SequenceCode``) are defined by a formula and compute their rows on demand.
"""

from .bank import EBVBank
from .codes import SequenceCode
from .stats import BankStats, bank_statistics, coherence_lower_bound, levenstein_bound, welch_bound

__all__ = [
    "EBVBank",
    "SequenceCode",
    "BankStats",
    "bank_statistics",
    "coherence_lower_bound",
    "levenstein_bound",
    "welch_bound",
]
