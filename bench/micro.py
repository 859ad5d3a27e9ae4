"""Micro-measurements behind six choices in fastconv's kernels (bench/README.md).

``python -m bench.micro`` prints, each as a ratio measured in the same run:

1. a 24-item row copy written as ``dst[r + ow] = src[ow + off]`` over ``range(lo, hi)``
   (Numba checks every index for wraparound and does not vectorise) against views indexed
   from 0, the way ``kernels/_index.py`` copies rows;
2. the same copy through a helper that Numba inlines (``config.inline``) or that it leaves
   to LLVM (``config.helper``);
3. 2x2 max pooling with the stride a run-time value against the literal 2 of
   ``pooling._maxpool_forward_2x2s2``, serial, on SimpleConvNet's (100, 30, 24, 24);
4. the backward of that pooling: the generic kernel (``k // PW``, ``k % PW`` at run time)
   against ``pooling._maxpool_backward_2x2s2`` (the cell from k's bits), serial, same shape;
5. unfolding and folding SimpleConvNet's conv1 input (100 samples, 5x5, stride 1, no pad)
   with the general loops (valid ranges, fills) against ``_unfold_sample`` and
   ``_fold_sample``, which take the plain-copy ``_unfold_valid`` and ``_fold_valid`` for
   stride 1 without padding;
6. the same for DeepConvNet's conv2 input (100 samples, 16 channels, 3x3, pad 1): the general
   loops against ``_unfold_sample`` / ``_fold_sample``, which copy each sample into a
   zero-bordered buffer and then take the plain-copy loops.
"""

import numba
import numpy as np

from bench.common import interleaved_timings
from fastconv.kernels import _conv_common as cc
from fastconv.kernels import pooling
from fastconv.kernels._index import gather


@numba.njit(nogil=True)
def _copy_offset(src, dst, lo, hi, off):
    for r in range(src.shape[0]):
        s = src[r]
        d = dst[r]
        for i in range(lo, hi):
            d[i] = s[i + off]


@numba.njit(nogil=True)
def _copy_views(src, dst, lo, hi, off):
    for r in range(src.shape[0]):
        s = src[r, lo + off:hi + off]
        d = dst[r, lo:hi]
        for i in range(d.shape[0]):
            d[i] = s[i]


_gather_not_inlined = numba.njit(nogil=True)(gather.py_func)


@numba.njit(nogil=True)
def _copy_helper_inlined(src, dst, lo, hi, off):
    for r in range(src.shape[0]):
        gather(dst[r, lo:hi], src[r], lo + off, 1)


@numba.njit(nogil=True)
def _copy_helper_called(src, dst, lo, hi, off):
    for r in range(src.shape[0]):
        _gather_not_inlined(dst[r, lo:hi], src[r], lo + off, 1)


# sizes, stride and pad are arguments, as in the kernels: as literals, LLVM folds them into
# the loops and the timings are of code the kernels never run (the plain copy took twice as
# long with out_w a literal 24)
@numba.njit(nogil=True)
def _unfold_general(x, col, F, stride, pad, out):
    for n in range(x.shape[0]):
        cc._unfold_general(x, n, F, F, stride, pad, out, out, col)


@numba.njit(nogil=True)
def _unfold_valid(x, col, F, stride, pad, out):
    for n in range(x.shape[0]):
        cc._unfold_sample(x, n, F, F, stride, pad, out, out, col)


@numba.njit(nogil=True)
def _fold_general(dcol, dx, F, stride, pad, out):
    for n in range(dx.shape[0]):
        cc._fold_general(dcol, F, F, stride, pad, out, dx[n])


@numba.njit(nogil=True)
def _fold_valid(dcol, dx, F, stride, pad, out):
    for n in range(dx.shape[0]):
        cc._fold_sample(dcol, F, F, stride, pad, out, dx[n])


def _median_ms(funcs, rounds):
    return [float(np.median(t)) * 1e3 for t in interleaved_timings(funcs, rounds)]


def main():
    rng = np.random.default_rng(0)
    src = rng.random((600, 28))  # 600 rows of a 28-wide input: stays in cache
    dst = np.empty((600, 24))
    args = (src, dst, 0, 24, 2)
    offset, views, inlined, called = _median_ms(
        [lambda f=f: f(*args) for f in (_copy_offset, _copy_views, _copy_helper_inlined,
                                        _copy_helper_called)], 300)
    print(f"1. row copy, 600 rows of 24: offset loop {offset * 1e3:.0f} us, views from 0 "
          f"{views * 1e3:.0f} us: {offset / views:.1f}x")
    print(f"2. row copy through a helper: not inlined {called * 1e3:.0f} us, inlined "
          f"{inlined * 1e3:.0f} us: {called / inlined:.1f}x")
    x = np.maximum(rng.standard_normal((100, 30, 24, 24)), 0)
    out = np.empty((100, 30, 12, 12))
    idx = np.empty(out.shape, dtype=np.int8)
    runtime, literal = _median_ms(
        [lambda: pooling._maxpool_forward_2x2.serial(x, 2, out, idx),
         lambda: pooling._maxpool_forward_2x2s2.serial(x, out, idx)], 50)
    print(f"3. 2x2 max pooling, serial: stride at run time {runtime:.2f} ms, literal stride 2 "
          f"{literal:.2f} ms: {runtime / literal:.1f}x")
    dout = rng.standard_normal(out.shape)
    dx = np.empty(x.shape)
    generic, bits = _median_ms(
        [lambda: pooling._maxpool_backward.serial(dout, idx, 2, 2, 2, 0, dx),
         lambda: pooling._maxpool_backward_2x2s2.serial(dout, idx, dx)], 50)
    print(f"4. 2x2 max pooling backward, serial: generic {generic:.2f} ms, 2x2 kernel "
          f"{bits:.2f} ms: {generic / bits:.1f}x")
    ug, uv, fg, fv = _unfold_fold_ms(rng.standard_normal((100, 1, 28, 28)), 5, 0, 100)
    print(f"5. conv1 unfold, 100 samples: general {ug:.2f} ms, stride-1 no-pad {uv:.2f} ms: "
          f"{ug / uv:.1f}x; fold: {fg:.2f} against {fv:.2f} ms: {fg / fv:.1f}x")
    ug, uv, fg, fv = _unfold_fold_ms(rng.standard_normal((100, 16, 28, 28)), 3, 1, 30)
    print(f"6. deep conv2 unfold, 100 samples, pad 1: general {ug:.2f} ms, padded buffer "
          f"{uv:.2f} ms: {ug / uv:.1f}x; fold: {fg:.2f} against {fv:.2f} ms: {fg / fv:.1f}x")


def _unfold_fold_ms(x, F, pad, rounds):
    """Median ms of the general unfold, _unfold_sample, the general fold, _fold_sample on x
    (stride 1, an F x F window, ``pad``)."""
    out = x.shape[2] + 2 * pad - F + 1
    col = np.empty((x.shape[1] * F * F, out * out))
    dx = np.empty_like(x)
    args = (F, 1, pad, out)
    return _median_ms([lambda f=f, a=a: f(*a, *args) for f, a in (
        (_unfold_general, (x, col)), (_unfold_valid, (x, col)),
        (_fold_general, (col, dx)), (_fold_valid, (col, dx)))], rounds)

if __name__ == "__main__":
    main()
