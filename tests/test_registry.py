"""Every implementation of every op in the registry agrees with the plain loops (``naive``).

The benchmarks in bench/ time these very callables, so this is what makes their numbers
comparable. torch cases skip when torch is not installed.
"""
import numpy as np
import pytest

import registry
from registry import IMPL_NAMES, OPS, REGISTRY, make_args

CONV_SPECS = {
    "small": {"x": (2, 3, 7, 7), "W": (4, 3, 3, 3), "stride": 1, "pad": 1},
    "s2p2rect": {"x": (2, 2, 8, 7), "W": (3, 2, 3, 2), "stride": 2, "pad": 2},
    "c8": {"x": (1, 8, 6, 6), "W": (5, 8, 3, 3), "stride": 1, "pad": 0},  # the GEMM path
}
POOL_SPECS = {
    "small": {"x": (2, 3, 6, 6), "pool": (2, 2), "stride": 2, "pad": 0},
    "overlap": {"x": (2, 3, 7, 7), "pool": (3, 3), "stride": 2, "pad": 1},
    "rect": {"x": (1, 2, 7, 9), "pool": (2, 3), "stride": 1, "pad": 1},
}
DTYPES = {"float64": (np.float64, 1e-12), "float32": (np.float32, 1e-5)}


def _keeps_float32(op, name):
    """Whether ``name`` computes in float32 when given float32: not the loops, not the book,
    not fastconv's im2col/col2im (the book's util API, float64 always)."""
    if name.startswith("numba"):
        return op not in ("im2col", "col2im")
    return name in ("numpy_strided", "torch")


def _specs(op):
    return CONV_SPECS if op in ("im2col", "col2im") or op.startswith("conv") else POOL_SPECS


CASES = [(op, spec) for op in OPS for spec in _specs(op)]
_reference = {}


def _naive_result(op, spec, dtype):
    key = (op, spec, dtype)
    if key not in _reference:
        _reference[key] = REGISTRY[op]["naive"](*make_args(op, _specs(op)[spec], DTYPES[dtype][0]))
    return _reference[key]


def _assert_close(got, want, tol, what):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    scale = float(np.max(np.abs(want))) if want.size else 1.0
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(scale, 1e-30), err_msg=what)


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("name", [n for n in IMPL_NAMES if n != "naive"])
@pytest.mark.parametrize("op, spec", CASES, ids=[f"{op}-{spec}" for op, spec in CASES])
def test_agrees_with_naive(op, spec, name, dtype):
    if name not in REGISTRY[op]:
        pytest.skip(f"{name} is not installed")
    impl = REGISTRY[op][name]
    np_dtype, tol = DTYPES[dtype]
    args = make_args(op, _specs(op)[spec], np_dtype)
    if not impl.supports(*args):
        pytest.skip(f"{name} cannot run {op} on {spec} (the book's pooling has no padding)")
    got = impl(*args)
    want = _naive_result(op, spec, dtype)
    what = f"{op}/{spec}/{name}/{dtype}"
    if op == "maxpool_forward":
        _assert_close(got[0], want[0], tol, what + " out")
        np.testing.assert_array_equal(got[1], want[1], err_msg=what + " arg_max")
        got = got[0]
    elif op == "conv_backward":
        for part, g, w in zip(("dx", "dW", "db"), got, want, strict=True):
            _assert_close(g, w, tol, f"{what} {part}")
        got = got[0]
    else:
        _assert_close(got, want, tol, what)
    if dtype == "float32" and _keeps_float32(op, name):
        assert got.dtype == np.float32, f"{what}: computed in {got.dtype}"


def test_registry_is_complete():
    for op in OPS:
        expected = [n for n in IMPL_NAMES if n != "torch" or registry.HAS_TORCH]
        assert list(REGISTRY[op]) == expected, op
        for name, impl in REGISTRY[op].items():
            assert impl.name == name


@pytest.mark.parametrize("parallel", [False, True])
def test_numba_variants_run_different_code(monkeypatch, parallel):
    """numba_serial runs only ``.serial`` kernel variants and never the launcher's parallel
    loop; numba_parallel only ``.parallel`` variants, and the convolution and the Affine
    products on the parallel loop (a single run, too small to split, on the calling thread)."""
    from fastconv import config
    from fastconv.kernels import _launch, activation, conv, im2col, matmul, pooling

    calls = []
    for where, name in (("parallel", "_each_run"), ("this thread", "_in_this_thread")):
        def spy_launch(*args, _compiled=getattr(_launch, name), _where=where):
            calls.append(_where)
            return _compiled(*args)

        monkeypatch.setattr(_launch, name, spy_launch)
    for module in (activation, conv, im2col, matmul, pooling):
        for kern in vars(module).values():
            if not isinstance(kern, config._Kernel):
                continue
            for variant in ("serial", "parallel"):
                def spy(*args, _compiled=getattr(kern, variant), _variant=variant):
                    calls.append(_variant)
                    return _compiled(*args)

                monkeypatch.setattr(kern, variant, spy)

    name = "numba_parallel" if parallel else "numba_serial"
    for op, spec in CASES:
        REGISTRY[op][name](*make_args(op, _specs(op)[spec]))
    assert len(calls) >= len(CASES)
    assert ("parallel" if parallel else "serial") in calls
    assert ("serial" if parallel else "parallel") not in calls


def test_prepare_is_outside_run():
    """The book's conv backward gets col and col_W from prepare: run only does the backward."""
    args = make_args("conv_backward", CONV_SPECS["small"])
    state = REGISTRY["conv_backward"]["numpy_im2col"].prepare(*args)
    assert len(state) == 7 and state[3].shape == (2 * 7 * 7, 3 * 3 * 3)
