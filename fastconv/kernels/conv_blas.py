"""Convolution as one small BLAS GEMM per sample, blocks of samples on worker threads.

Forward: ``out[n] = [W | b] @ [col_n ; 1]``, written straight into the NCHW output (the bias is
a column of W against a row of ones, so no extra pass). Backward per sample:
``dW += dout_n @ col_n.T``, ``dcol_n = W.T @ dout_n`` folded onto ``dx[n]``. A sample's (K, P)
col matrix stays in cache between the unfold and the GEMMs.

The samples go in fixed blocks; each block's dW/db partial is added in block order, and the
block boundaries do not depend on the thread count, so every thread count gives the same bits.

Stride-1 convolutions that ``conv_shift.use_shift`` picks (DeepConvNet's conv2-conv6) run,
on the Numba path, one GEMM per filter tap on shifted views of the padded sample instead of
the unfold and one GEMM (``kernels/conv_shift.py``); the kernels below take a ``taps`` tuple
for it (:func:`_taps`), None otherwise.

Two ways to call the GEMMs, the same arithmetic:

- ``numba_gemm=True`` (path ``"blas_numba"``, used when SciPy is installed; the GEMMs are
  NumPy's OpenBLAS CBLAS called from Numba, ``kernels._blas``): each thread makes one
  GIL-free compiled call that walks its run of blocks of ``NUMBA_BLOCK`` samples a sample at
  a time, so only one sample's col (120 KB at conv1) is live and stays in L2, and no Python
  runs between the GEMMs;
- ``numba_gemm=False`` (path ``"blas"``): a block of ``BLOCK`` samples' cols is built at once
  and handed to one batched ``np.matmul``, which needs no SciPy but keeps the whole block's
  col (0.9 MB at conv1) live between Python calls; each block is a task of
  :func:`fastconv.config.run_tasks`.
"""
import threading

import numpy as np

from ..config import helper, run_tasks, run_workers
from . import _checks as chk
from ._blas import gemm
from ._conv_common import _check, _check_bias, _fold_sample, _result_dtype, _unfold_sample
from .conv_shift import (_shift_backward_sample, _shift_forward_sample, _taps_to_grad,
                         buffer_sizes, tap_weights, use_shift)

# Samples per task of the NumPy path: 8 was the fastest or within 10% of it on the book's
# layers among blocks of 2, 4, 8 and 16 (bench/README); a block's col is 8*K*P*itemsize bytes
# (0.9 MB at conv1).
BLOCK = 8
# Samples per block of the Numba path. The blocks, not the threads, split the dW sum, so
# results do not depend on the thread count, and a thread gets whole blocks: 5 splits the
# book's batch of 100 into 20 blocks, 10 per thread on 2 (4 gave 13 and 12). Whole steps,
# interleaved A/B: 5 was faster than 4 or tied (bench/README); layer by layer 1 to 8 were
# within a few percent, 16 slower.
NUMBA_BLOCK = 5


@helper
def _unfold_block(x, n0, FH, FW, stride, pad, out_h, out_w, col):
    # col[i] for sample n0 + i; rows past C*FH*FW (the bias row) are set to 1
    K = x.shape[1] * FH * FW
    for i in range(col.shape[0]):
        _unfold_sample(x, n0 + i, FH, FW, stride, pad, out_h, out_w, col[i])
        for k in range(K, col.shape[1]):
            col[i, k, :] = 1


@helper
def _fold_block(dcol, FH, FW, stride, pad, out_w, dx):
    for i in range(dx.shape[0]):
        _fold_sample(dcol[i], FH, FW, stride, pad, out_w, dx[i])


@helper
def _forward_block(x, n0, n1, FH, FW, stride, pad, out_h, out_w, Wb, col, taps, out):
    FN = out.shape[1]
    _start_run(col, taps)
    for n in range(n0, n1):
        _forward_sample(x, n, FH, FW, stride, pad, out_h, out_w, Wb, col, taps,
                        out[n].reshape(FN, out_h * out_w))


@helper
def _start_run(col, taps):
    # a thread's buffers before its first sample: col's bias row (its last) 1; the per-tap
    # xp and wide zero (conv_shift rewrites only their interior)
    col[col.shape[0] - 1, :] = 1
    if taps is not None:
        taps[2][:] = 0
        taps[3][:] = 0


@helper
def _forward_sample(x, n, FH, FW, stride, pad, out_h, out_w, Wb, col, taps, y):
    # y (FN, P) = sample n convolved, + b: the per-tap GEMMs when there are taps (see
    # _taps), else the unfold into col (K + 1, P) and one GEMM against [W | b]. taps None is
    # a type of its own, so Numba compiles only the branch taken
    if taps is not None:
        _shift_forward_sample(x, n, FH, FW, pad, taps[0], taps[1], taps[2], taps[3], y)
    else:
        _unfold_sample(x, n, FH, FW, stride, pad, out_h, out_w, col)
        gemm(Wb, col, y, False, 0)


@helper
def _backward_blocks(x, dout, b0, b1, B, FH, FW, stride, pad, out_h, out_w, W2T, col, dcol,
                     taps, grad_part, dx):
    # blocks b0..b1 of B samples: grad_part[i] = [dW | db] summed over block i's samples in
    # sample order (dx empty: not needed)
    N = x.shape[0]
    FN = grad_part.shape[1]
    _start_run(col, taps)
    for i in range(b0, b1):
        _start_block(grad_part[i], taps)
        for n in range(i * B, min(N, i * B + B)):
            _backward_sample(x, n, dout[n].reshape(FN, out_h * out_w), FH, FW, stride, pad,
                             out_h, out_w, W2T, col, dcol, taps, grad_part[i], dx)
        _end_block(grad_part[i], taps)


@helper
def _start_block(grad, taps):
    grad[:, :] = 0
    if taps is not None:
        taps[5][:] = 0  # the per-tap dW sums
        taps[6][:] = 0  # db


@helper
def _end_block(grad, taps):
    if taps is not None:
        _taps_to_grad(taps[5], taps[6], grad)


@helper
def _backward_sample(x, n, d, FH, FW, stride, pad, out_h, out_w, W2T, col, dcol, taps, grad,
                     dx):
    # one sample, d its (FN, P) output gradient. Per-tap GEMMs when there are taps (see
    # _taps). Else grad += d @ col.T (db against col's row of ones; CBLAS's beta = 1, no
    # temporary) and dcol = W2T @ d folded onto dx[n]
    if taps is not None:
        _shift_backward_sample(x, n, d, FH, FW, pad, taps[0], taps[2], taps[3], taps[4],
                               taps[5], taps[6], dx)
        return
    _unfold_sample(x, n, FH, FW, stride, pad, out_h, out_w, col)
    gemm(d, col, grad, True, 1)
    if dx.shape[0] > 0:
        gemm(W2T, d, dcol, False, 0)
        _fold_sample(dcol, FH, FW, stride, pad, out_w, dx[n])


_local = threading.local()


def _scratch(shape, dtype):
    """An uninitialised array from this thread's reusable buffer: a block's col is allocated
    once per thread, not per call (fresh pages cost page faults: see bench/README)."""
    dtype = np.dtype(dtype)
    need = int(np.prod(shape)) * dtype.itemsize
    buf = getattr(_local, "buf", None)
    if buf is None or buf.size < need:
        buf = _local.buf = np.empty(max(need, 1), dtype=np.uint8)
    return buf[:need].view(dtype).reshape(shape)


@helper
def _nonfinite(flat):
    # whether any item of the 1-D array is inf or NaN (v - v is 0 for every finite v). No
    # early exit, so LLVM vectorises it: DeepConvNet conv2's input in 0.07 ms, against 0.31
    # for np.sum (in-session script)
    bad = False
    for i in range(flat.shape[0]):
        v = flat[i]
        bad |= (v - v) != 0
    return bad


def _plan(x, W, b, stride, pad, dt, backward):
    """What every thread shares: whether the per-tap GEMMs run (``conv_shift.use_shift``),
    their weights, (FH*FW, FN, C) for forward or (FH*FW, C, FN) for backward, and the bias.

    Backward takes them only when x and W are finite: their wide grid multiplies a few
    input values that the tap never meets by zeros, which adds nothing unless the value is
    inf or NaN, and the book's dW would then stay finite where theirs turned NaN."""
    if not use_shift(x.shape, W.shape, stride, pad, backward, dt) or (
            backward and (_nonfinite(x.reshape(-1)) or _nonfinite(W.reshape(-1)))):
        return False, np.empty((0, 0, 0), dt), np.empty(0, dt)
    bias = np.empty(0, dt) if backward else np.ascontiguousarray(b, dtype=dt)
    return True, tap_weights(W, dt, transposed=backward), bias


def _taps(plan, x_shape, W_shape, pad, K, P, dt, backward, extra=0):
    """This thread's buffers, from one reusable block: ``(col, dcol, taps, rest)``.

    ``taps`` is the tuple the kernels take when the plan says per-tap GEMMs (conv_shift),
    ``(weights, b, xp, wide, dxp, g, db)``, and col (K + 1, P) and dcol (K, P, backward only)
    are empty then; else ``taps`` is None (so the kernels compiled for a network without
    per-tap layers leave that code out). ``rest`` holds ``extra`` more items."""
    shift, weights, bias = plan
    FN, C, FH, FW = W_shape
    if shift:
        n_xp, n_wide = buffer_sizes(x_shape, W_shape, pad)
        sizes = [0, 0, n_xp, n_wide] + ([n_xp, FH * FW * FN * C, FN] if backward else [0] * 3)
    else:
        sizes = [(K + 1) * P, K * P if backward else 0, 0, 0, 0, 0, 0]
    buf = _scratch((sum(sizes) + extra,), dt)
    ends = np.cumsum(sizes)
    part = [buf[e - n:e] for n, e in zip(sizes, ends)]
    col = part[0].reshape(K + 1, -1) if not shift else part[0].reshape(1, 0)
    dcol = part[1].reshape(K, -1) if (backward and not shift) else part[1].reshape(0, 0)
    g = part[5].reshape(FH * FW, FN, C) if (shift and backward) else part[5].reshape(0, 0, 0)
    taps = (weights, bias, part[2], part[3], part[4], g, part[6]) if shift else None
    return col, dcol, taps, buf[ends[-1]:]


def stage(x, W, b, stride, pad, dt, K, P, backward, call, extra=0):
    """One convolution for :func:`run_stages`: ``run(b0, b1)`` takes the calling thread's
    buffers for the plan all threads share (:func:`_taps`, ``extra`` more items in ``rest``)
    and calls ``call(b0, b1, B, col, dcol, taps, rest)`` on its run of blocks ``b0..b1`` of
    ``B = NUMBA_BLOCK`` samples."""
    plan = _plan(x, W, b, stride, pad, dt, backward)

    def run(b0, b1):
        col, dcol, taps, rest = _taps(plan, x.shape, W.shape, pad, K, P, dt, backward, extra)
        call(b0, b1, NUMBA_BLOCK, col, dcol, taps, rest)

    return run


def run_stages(stages, N):
    """Each worker takes its run of blocks of the N samples through every stage in turn.

    One hand-over to the threads for the whole sequence: a stage reads only what the stage
    before wrote for the same samples, and each worker keeps its samples in every stage, so
    no thread waits for another between stages (DeepConvNet's six convolutions: one
    hand-over instead of six, bench/README). Same blocks, same bits as stage by stage."""
    runs = worker_runs(-(-N // NUMBA_BLOCK))

    def task(i):
        for run in stages:
            run(*runs[i])

    run_tasks(task, len(runs))


def _with_bias(W, b, dt):
    """``[W | b]``, (FN, K + 1) in ``dt``: the forward GEMM's left side, against col's row of
    ones."""
    FN = W.shape[0]
    K = W.size // FN
    Wb = np.empty((FN, K + 1), dtype=dt)
    Wb[:, :K] = W.reshape(FN, K)
    Wb[:, K] = b
    return Wb


def _blocks(N):
    return [(n0, min(N, n0 + BLOCK)) for n0 in range(0, N, BLOCK)]


def worker_runs(n_blocks):
    """Contiguous runs ``(b0, b1)`` of block indices, one per thread :func:`run_tasks` uses:
    one compiled call per thread walks its run, so a call wakes each worker once (tasks of
    one block each cost 0.2-0.35 ms more at conv1's forward). The blocks, not the runs, split
    the dW sum, so the thread count does not change the bits."""
    w = max(1, min(run_workers(), n_blocks))
    return [(i * n_blocks // w, (i + 1) * n_blocks // w) for i in range(w)]


def conv_forward_blas(x, W, b, stride=1, pad=0, dtype=None, numba_gemm=False):
    """Convolution as per-sample GEMMs ``[W | b] @ [col_n ; 1]``.

    Returns an (N, FN, out_h, out_w) array in ``dtype`` (default: result type of x and W).
    ``numba_gemm``: call the GEMMs from Numba (needs SciPy; module docstring).
    """
    x, W, stride, pad, oshape = _check("conv_forward", x, W, stride, pad)
    b = _check_bias("conv_forward", b, W.shape[0])
    dt = _result_dtype(x, W, dtype)
    N, FN, out_h, out_w = oshape
    FH, FW = W.shape[2], W.shape[3]
    K, P = W.shape[1] * FH * FW, out_h * out_w
    Wb = _with_bias(W, b, dt)
    x = chk.contiguous(x)
    out = np.empty(oshape, dtype=dt)
    if numba_gemm:
        def run(b0, b1, B, col, dcol, taps, rest):
            _forward_block(x, b0 * B, min(N, b1 * B), FH, FW, stride, pad, out_h, out_w, Wb,
                           col, taps, out)

        run_stages([stage(x, W, b, stride, pad, dt, K, P, False, run)], N)
        return out
    blocks = _blocks(N)

    def task(i):
        n0, n1 = blocks[i]
        col = _scratch((n1 - n0, K + 1, P), dt)
        _unfold_block(x, n0, FH, FW, stride, pad, out_h, out_w, col)
        np.matmul(Wb, col, out=out[n0:n1].reshape(n1 - n0, FN, P))

    run_tasks(task, len(blocks))
    return out


def conv_backward_blas(dout, x, W, stride=1, pad=0, dtype=None, need_dx=True,
                       numba_gemm=False):
    """Gradients ``(dx, dW, db)`` of :func:`conv_forward_blas` (``dx`` is None when
    ``need_dx`` is False). Each block's col is rebuilt in cache rather than kept from forward."""
    x, W, stride, pad, oshape = _check("conv_backward", x, W, stride, pad)
    dout = chk.as_array("conv_backward", "dout", dout)
    chk.check_shape("conv_backward", "dout", dout, oshape)
    dt = _result_dtype(x, W, dtype)
    N, FN, out_h, out_w = oshape
    FH, FW = W.shape[2], W.shape[3]
    K, P = W.shape[1] * FH * FW, out_h * out_w
    x = chk.contiguous(x)
    dout = chk.contiguous(dout.astype(dt, copy=False))
    W2T = chk.contiguous(W.reshape(FN, K).T.astype(dt, copy=False))
    dx = np.empty(x.shape, dtype=dt) if need_dx else None
    # [dW | db] per block: col gets the forward's row of ones, so one GEMM gives both
    # (db = dout_n @ ones; a separate pass over dout cost as much as the fold)
    if numba_gemm:
        grad_part = np.empty((-(-N // NUMBA_BLOCK), FN, K + 1), dtype=dt)
        dx_or_none = dx if need_dx else np.empty((0,) + x.shape[1:], dtype=dt)

        def run(b0, b1, B, col, dcol, taps, rest):
            _backward_blocks(x, dout, b0, b1, B, FH, FW, stride, pad, out_h, out_w, W2T, col,
                             dcol, taps, grad_part, dx_or_none)

        run_stages([stage(x, W, None, stride, pad, dt, K, P, True, run)], N)
        return _split_grad(grad_part, dx, W.shape)
    blocks = _blocks(N)
    grad_part = np.empty((len(blocks), FN, K + 1), dtype=dt)

    def task(i):
        n0, n1 = blocks[i]
        col = _scratch((n1 - n0, K + 1, P), dt)
        _unfold_block(x, n0, FH, FW, stride, pad, out_h, out_w, col)
        d = dout[n0:n1].reshape(n1 - n0, FN, P)
        # per-sample [dW | db] in one call, then added in sample order
        np.sum(np.matmul(d, col.transpose(0, 2, 1)), axis=0, out=grad_part[i])
        if need_dx:
            # col is free now: dcol goes into its first K rows; the fold reads only those
            # (given all of col, C-contiguous: with the strided view deep conv2 took 7% longer)
            np.matmul(W2T, d, out=col[:, :K])
            _fold_block(col, FH, FW, stride, pad, out_w, dx[n0:n1])

    run_tasks(task, len(blocks))
    return _split_grad(grad_part, dx, W.shape)


def _split_grad(grad_part, dx, W_shape):
    """``(dx, dW, db)`` from the blocks' ``[dW | db]`` partials, added in block order."""
    grad = grad_part.sum(axis=0)
    K = grad.shape[1] - 1
    return dx, np.ascontiguousarray(grad[:, :K]).reshape(W_shape), grad[:, K].copy()


def conv_forward_blas_numba(x, W, b, stride=1, pad=0, dtype=None):
    """:func:`conv_forward_blas` with the GEMMs called from Numba (path ``"blas_numba"``)."""
    return conv_forward_blas(x, W, b, stride, pad, dtype, numba_gemm=True)


def conv_backward_blas_numba(dout, x, W, stride=1, pad=0, dtype=None, need_dx=True):
    """:func:`conv_backward_blas` with the GEMMs called from Numba (path ``"blas_numba"``)."""
    return conv_backward_blas(dout, x, W, stride, pad, dtype, need_dx, numba_gemm=True)
