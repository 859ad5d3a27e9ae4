"""Dataset loaders (the book's ``dataset/`` package)."""

from .mnist import MNISTUnavailableError, load_mnist

__all__ = ["load_mnist", "MNISTUnavailableError"]
