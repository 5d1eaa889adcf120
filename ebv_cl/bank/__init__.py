"""Banks of fixed unit vectors: generation, quality statistics, bounds and the file format."""

from .bank import EBVBank
from .stats import BankStats, bank_statistics, coherence_lower_bound, levenstein_bound, welch_bound

__all__ = [
    "EBVBank",
    "BankStats",
    "bank_statistics",
    "coherence_lower_bound",
    "levenstein_bound",
    "welch_bound",
]
