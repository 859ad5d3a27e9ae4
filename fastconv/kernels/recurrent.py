"""A simple recurrent layer's time loop, forward and backward through time (BPTT).

One sequence of T time steps, n features and ``units`` state values:

    h[t] = f(x[t] @ U.T + h[t-1] @ W.T),   h[-1] = h0

with U (units, n), W (units, units) and f one of ``ACTIVATIONS``. Each sum runs in a fixed
order (the n input terms, then the ``units`` state terms; time steps in increasing order), so
the results do not depend on the machine, and ``tests/naive.py`` repeats them bit for bit.

The loop over time is serial by nature: step t needs the whole state of step t-1. The loops
inside a step run over the state's index innermost, with one running sum per unit, so that
the compiler can work on several units at once without reordering any sum.
"""
import math

import numpy as np

from ..config import helper, inline
from . import _checks as chk

__all__ = ["ACTIVATIONS", "rnn_forward", "rnn_backward"]

# the kernels take the activation as its index in this tuple
ACTIVATIONS = ("tanh", "ReLU", "sigmoid", "linear")
_TANH, _RELU, _SIGMOID, _LINEAR = range(4)


@inline
def _activate(v, act):
    if act == _TANH:
        return math.tanh(v)
    if act == _RELU:
        return v if v > 0 else v * 0  # v * 0: a zero of v's own type, as both branches need
    if act == _SIGMOID:
        return 1 / (1 + math.exp(-v))
    return v


@inline
def _slope(h, act):
    """f'(z) written with the output h = f(z): every activation here allows it."""
    if act == _TANH:
        return 1 - h * h
    if act == _RELU:
        return 1.0 if h > 0 else 0.0
    if act == _SIGMOID:
        return h * (1 - h)
    return 1.0


@helper
def _add_vecmat(acc, v, M):
    """``acc += v @ M`` (acc (m,), v (J,), M (J, m)), each acc[i] adding its J terms in order.

    Four rows of M a pass: acc[i] is loaded and stored once per four terms instead of once
    per term, with the same additions in the same order."""
    J = v.shape[0]
    j = 0
    while j + 4 <= J:
        a, b, c, d = v[j], v[j + 1], v[j + 2], v[j + 3]
        m0, m1, m2, m3 = M[j], M[j + 1], M[j + 2], M[j + 3]
        for i in range(acc.shape[0]):
            acc[i] = (((acc[i] + a * m0[i]) + b * m1[i]) + c * m2[i]) + d * m3[i]
        j += 4
    while j < J:
        a, m = v[j], M[j]
        for i in range(acc.shape[0]):
            acc[i] += a * m[i]
        j += 1


@helper
def _add_vecmat_rows(acc, V, M):
    """``acc[r] += V[:, r] @ M`` for every row r (acc (k, m), V (J, k), M (J, m)), each
    acc[r, i] adding its J terms in order, as :func:`_add_vecmat`.

    Four rows of acc a pass: each row of M is read once for four rows of acc, not once for
    each, with the same additions in the same order."""
    J, k = V.shape
    r = 0
    while r + 4 <= k:
        a0, a1, a2, a3 = acc[r], acc[r + 1], acc[r + 2], acc[r + 3]
        for j in range(J):
            m = M[j]
            v0, v1, v2, v3 = V[j, r], V[j, r + 1], V[j, r + 2], V[j, r + 3]
            for i in range(m.shape[0]):
                mi = m[i]
                a0[i] += v0 * mi
                a1[i] += v1 * mi
                a2[i] += v2 * mi
                a3[i] += v3 * mi
        r += 4
    while r < k:
        _add_vecmat(acc[r], V[:, r], M)
        r += 1


@helper(python=True)
def _rnn_forward(x, UT, WT, h0, act, h):
    # UT (n, units) and WT (units, units) are U.T and W.T: rows along the units
    acc = np.zeros_like(h0)
    for t in range(x.shape[0]):
        acc[:] = 0
        _add_vecmat(acc, x[t], UT)
        _add_vecmat(acc, h0 if t == 0 else h[t - 1], WT)
        for i in range(acc.shape[0]):
            h[t, i] = _activate(acc[i], act)


@helper(python=True)
def _rnn_backward(x, U, W, h0, h, dout, act, delta, dU, dW, dx):
    # dU, dW and dx come zeroed
    T = x.shape[0]
    units = h0.shape[0]
    # the error of step t: the layer above's dout[t] plus what step t+1 sends back
    carry = np.zeros_like(h0)
    for t in range(T - 1, -1, -1):
        for i in range(units):
            delta[t, i] = (dout[t, i] + carry[i]) * _slope(h[t, i], act)
        carry[:] = 0
        _add_vecmat(carry, delta[t], W)
    # dx[t] = delta[t] @ U, and the gradients of U and W: sums over the time steps in
    # increasing order (step 0 started from h0, step t from h[t-1])
    _add_vecmat_rows(dx, delta.T, U)
    _add_vecmat_rows(dU, delta, x)
    if T > 0:
        for i in range(units):
            for j in range(units):
                dW[i, j] += delta[0, i] * h0[j]
        _add_vecmat_rows(dW, delta[1:], h[:-1])


def _activation_index(func, activation):
    if activation not in ACTIVATIONS:
        raise ValueError(f"{func}: activation must be one of {ACTIVATIONS}, got "
                         f"{activation!r}")
    return ACTIVATIONS.index(activation)


def _check_weights(func, x, U, W, h0):
    """The four arrays, checked against each other, in their common floating dtype."""
    x = chk.as_array(func, "x", x, ndim=2)
    U = chk.as_array(func, "U", U, ndim=2)
    W = chk.as_array(func, "W", W, ndim=2)
    h0 = chk.as_array(func, "h0", h0, ndim=1)
    units, n = U.shape
    if x.shape[1] != n:
        raise ValueError(f"{func}: x has {x.shape[1]} features per time step but U has "
                         f"shape {U.shape} (units, features)")
    chk.check_shape(func, "W", W, (units, units))
    chk.check_shape(func, "h0", h0, (units,))
    dtype = np.result_type(x, U, W, h0, np.float32)  # Numba has no float16 arithmetic
    return tuple(np.ascontiguousarray(a, dtype=dtype) for a in (x, U, W, h0))


def rnn_forward(x, U, W, h0, activation="tanh"):
    """Every state of the sequence ``x``: ``h[t] = f(x[t] @ U.T + h[t-1] @ W.T)``.

    Parameters
    ----------
    x : ndarray (T, n)
        Time steps in order, one per row.
    U : ndarray (units, n)
    W : ndarray (units, units)
    h0 : ndarray (units,)
        The state before the first step.
    activation : {"tanh", "ReLU", "sigmoid", "linear"}

    Returns
    -------
    ndarray (T, units)
        In the floating dtype common to the arguments, at least float32 (float64 for
        integers).
    """
    act = _activation_index("rnn_forward", activation)
    x, U, W, h0 = _check_weights("rnn_forward", x, U, W, h0)
    h = np.empty((x.shape[0], U.shape[0]), dtype=x.dtype)
    _rnn_forward(x, np.ascontiguousarray(U.T), np.ascontiguousarray(W.T), h0, act, h)
    return h


def rnn_backward(x, U, W, h0, h, dout, activation="tanh"):
    """Backpropagation through time over the whole sequence of one :func:`rnn_forward`.

    Parameters
    ----------
    x, U, W, h0, activation
        As given to :func:`rnn_forward`.
    h : ndarray (T, units)
        Its result.
    dout : ndarray (T, units)
        Gradient of the loss with respect to ``h`` from the layer above (not through time).

    Returns
    -------
    dx : ndarray (T, n)
    dU : ndarray (units, n)
    dW : ndarray (units, units)
    """
    act = _activation_index("rnn_backward", activation)
    x, U, W, h0 = _check_weights("rnn_backward", x, U, W, h0)
    T, units = x.shape[0], U.shape[0]
    h = chk.as_array("rnn_backward", "h", h, ndim=2)
    dout = chk.as_array("rnn_backward", "dout", dout, ndim=2)
    chk.check_shape("rnn_backward", "h", h, (T, units))
    chk.check_shape("rnn_backward", "dout", dout, (T, units))
    h = np.ascontiguousarray(h, dtype=x.dtype)
    dout = np.ascontiguousarray(dout, dtype=x.dtype)
    delta = np.empty((T, units), dtype=x.dtype)
    dU = np.zeros_like(U)
    dW = np.zeros_like(W)
    dx = np.zeros_like(x)
    _rnn_backward(x, U, W, h0, h, dout, act, delta, dU, dW, dx)
    return dx, dU, dW
