"""The dataset loaders; importing this package registers each of them in ``DATASETS``."""

from . import cifar, digits, emnist, generic, mnist, omniglot, tinyimagenet

__all__ = ["cifar", "digits", "emnist", "generic", "mnist", "omniglot", "tinyimagenet"]
