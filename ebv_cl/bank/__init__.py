"""Banks of fixed unit vectors: generation, quality statistics, bounds and the file format.

Code banks (``bank.code`` is a ``SequenceCode``) are defined by a formula and compute their rows on demand.
"""

from .bank import EBVBank
from .codes import SequenceCode
from .sizing import DEFAULT_DIM_CAP, default_bank_dim
from .stats import BankStats, bank_statistics, coherence_lower_bound, levenstein_bound, welch_bound

__all__ = [
    "EBVBank",
    "SequenceCode",
    "DEFAULT_DIM_CAP",
    "default_bank_dim",
    "BankStats",
    "bank_statistics",
    "coherence_lower_bound",
    "levenstein_bound",
    "welch_bound",
]
