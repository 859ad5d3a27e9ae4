# The book's dataset/mnist.py stands here (it downloads into this folder and unpickles).
# This fake fails on import: with fastconv's drop-in, dataset.mnist is fastconv's loader.
raise RuntimeError("BOOK-DATASET-mnist imported: the book's loader was used, not fastconv's")
