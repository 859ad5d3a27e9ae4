"""Alias of :mod:`fastconv.keras.visualization` at the seed's path ``cnn.utils.visualization``."""
from ..visualization import confusion_matrix, confusion_show, confusionsave, history_show

__all__ = ["history_show", "confusion_show", "confusionsave", "confusion_matrix"]
