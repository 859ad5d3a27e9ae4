"""The sizes below which a call runs the book's NumPy expression, or a kernel on one thread.

A kernel call has a fixed cost: argument checks, buffers, the launch, and on more than one
thread waking the other threads (slow on a machine whose idle cores sleep). So

* ``BOOK_BELOW[name]``: below this size the layer runs the book's own expression, which
  NumPy finishes sooner than the kernel's fixed cost (its numbers are then the book's bits).
  ``python -m bench.small --tune`` measures these on the machine it runs on and rewrites the
  table between the markers; the comment in it names that machine.
* ``SERIAL_BELOW[name]``: below this size the kernel runs on the calling thread only. Besides
  the wake-up, these keep a network of the book's MLP sizes (784-50-10, 100-unit layers,
  batch 100) on one thread beside NumPy: there each product is NumPy's ``np.dot``, whose
  BLAS threads keep spinning for a while after it returns, and a kernel that wanted those
  cores for its own threads would wait for them.

Sizes count values (elements of the layer's input, of a parameter array, of col).
"""
__all__ = ["BOOK_BELOW", "SERIAL_BELOW", "AFFINE_THREADS_FROM"]

# --- table: written by python -m bench.small --tune ---
# AMD EPYC, 2 cores, NumPy 2.4.6, Numba 0.68.1
BOOK_BELOW = {
    "relu": 2048,  # Relu.forward / backward: x.size
    "adam": 2048,  # Adam.update, per parameter array: its size
}
# --- end of table ---

SERIAL_BELOW = {
    "relu": 1 << 17,  # kernels.activation: x.size
    "adam": 1 << 18,  # kernels.optim: the parameter array's size (784 x 100 is 78,400)
    "pooling": 1 << 18,  # kernels.pooling: the input's size
    # util.im2col and col2im: the book's callers multiply col with np.dot right after (its
    # BLAS threads would meet fastconv's), and one thread is already faster than the book's
    "im2col": 1 << 24,  # kernels.im2col (im2col, col2im, unfold, fold): col's size
}

# Affine after a convolution (4-D input): from this many multiply-adds (M*N*K) on, np.dot would
# start OpenBLAS's threads (it runs smaller products on one), which keep spinning after it
# returns, on the cores the next convolution kernel needs. Such products run on fastconv's
# threads instead (kernels.matmul), BLAS on one thread each. Elsewhere (the MLPs) the
# neighbours are NumPy's, and the products are the book's np.dot at every size.
AFFINE_THREADS_FROM = 262144
