"""End to end: one step of the book's Trainer (gradient + Adam update + loss) at batch 100,
and inference (accuracy) over 10,000 images, for SimpleConvNet and DeepConvNet.

Groups: ``train_step|<net>|<dtype>`` and ``inference|<net>|<dtype>``; names as in the
registry (``numpy_im2col`` is the network with the book's own layers). The plain loops are
not run end to end (a DeepConvNet step would take hours). Rounds: ``FASTCONV_BENCH_ROUNDS``.
"""
import contextlib

import numpy as np
import pytest

import registry
from bench import shapes
from bench.common import DTYPES, rounds, thread_info
from bench.twins import E2E_IMPLS, NETS, make_data, make_runner

INFER_IMAGES = 10_000


def _batch():
    return 4 if shapes.smoke() else shapes.BATCH


def _images():
    return 8 if shapes.smoke() else INFER_IMAGES


CASES = [(net, dtype, impl) for net in NETS for dtype in DTYPES for impl in E2E_IMPLS]
IDS = [f"{net}|{dtype}|{impl}" for net, dtype, impl in CASES]


def _runner_or_skip(impl, net, dtype):
    if impl == "torch" and not registry.HAS_TORCH:
        pytest.skip("torch is not installed (pip install fastconv[torch])")
    return make_runner(impl, net, dtype, _batch())


def _label(benchmark, kind, net, dtype, impl, **extra):
    benchmark.group = f"{kind}|{net}|{dtype}"
    benchmark.name = impl
    benchmark.extra_info.update(op=kind, shape=net, dtype=dtype, impl=impl, **thread_info(),
                                **extra)


@pytest.mark.parametrize("net, dtype, impl", CASES, ids=IDS)
def test_train_step(benchmark, net, dtype, impl):
    runner = _runner_or_skip(impl, net, dtype)
    runner.step()  # JIT compilation and first-touch allocations, untimed
    _label(benchmark, "train_step", net, dtype, impl, batch=_batch())
    loss = benchmark.pedantic(runner.step, rounds=rounds(10), warmup_rounds=1, iterations=1)
    assert np.isfinite(loss)


@pytest.mark.parametrize("net, dtype, impl", CASES, ids=IDS)
def test_inference(benchmark, net, dtype, impl):
    runner = _runner_or_skip(impl, net, dtype)
    x, t = make_data(_images(), np.dtype(dtype), seed=7)
    runner.infer(x[:100], t[:100])  # one batch compiles everything: the warm-up
    _label(benchmark, "inference", net, dtype, impl, images=len(x), batch=100)
    acc = benchmark.pedantic(runner.infer, args=(x, t), rounds=rounds(3), iterations=1)
    assert 0.0 <= acc <= 1.0


@pytest.mark.parametrize("net", list(NETS))
def test_twins_agree(net):
    """The four implementations are one network: same predictions from the same weights,
    and the book's layers give fastconv's gradients."""
    runners = {impl: make_runner(impl, net, "float64", 4) for impl in E2E_IMPLS
               if impl != "torch" or registry.HAS_TORCH}
    x = runners["numba_parallel"].x
    want = runners["numba_parallel"].network.predict(x)
    for impl, runner in runners.items():
        if impl == "torch":
            import torch
            runner.network.eval()
            with torch.no_grad():
                got = runner.network(runner.x).numpy()
        else:
            with runner.active():
                got = runner.network.predict(x)
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, err_msg=impl)
    if net == "SimpleConvNet":  # no dropout, so gradients are comparable
        g_book = runners["numpy_im2col"].network.gradient(x, runners["numpy_im2col"].t)
        g_fast = runners["numba_parallel"].network.gradient(x, runners["numba_parallel"].t)
        for key in g_fast:
            np.testing.assert_allclose(g_book[key], g_fast[key], rtol=1e-9, atol=1e-15,
                                       err_msg=key)


def test_the_book_twin_steps_with_the_books_adam(monkeypatch):
    """The baseline is the book's whole Trainer step: its Adam is the book's NumPy lines, not
    fastconv's fused kernel (which the fastconv runners do use)."""
    from fastconv.kernels import optim

    calls = []
    real = optim.adam_update
    monkeypatch.setattr(optim, "adam_update", lambda *a: calls.append(1) or real(*a))
    book = make_runner("numpy_im2col", "SimpleConvNet", "float64", 4)
    p0 = {k: v.copy() for k, v in book.network.params.items()}
    book.step()
    assert not calls
    assert all(not np.array_equal(p0[k], book.network.params[k]) for k in p0)  # it updated
    make_runner("numba_parallel", "SimpleConvNet", "float64", 4).step()
    assert calls


def _book_fma(batch, convs, affines):
    # by hand from the book's architectures: a step has each layer's forward twice, its
    # dW once, and its dx once unless it is the first layer
    per_layer = ([batch * out * out * k * k * C * FN for C, FN, out, k in convs]
                 + [batch * D * M for D, M in affines])
    return 3 * sum(per_layer) + sum(per_layer[1:])


def test_floor_counts_the_books_gemms_and_runs():
    """``python -m bench.floor`` cannot rot, and its GEMM list has the multiply-adds of the
    book's architectures (SimpleConvNet: conv 5x5 to 24x24, Affine 4320-100-10; DeepConvNet:
    six 3x3 convolutions, conv4 with pad 2 so 16x16, Affine 1024-50-10), counted by hand."""
    from bench import floor

    simple = _book_fma(100, [(1, 30, 24, 5)], [(30 * 12 * 12, 100), (100, 10)])
    assert simple == 302_800_000
    deep = _book_fma(100, [(1, 16, 28, 3), (16, 16, 28, 3), (16, 32, 14, 3), (32, 32, 16, 3),
                           (32, 64, 8, 3), (64, 64, 8, 3)], [(64 * 4 * 4, 50), (50, 10)])
    assert floor.fma_count(floor.step_gemms("SimpleConvNet")) == simple
    assert floor.fma_count(floor.step_gemms("DeepConvNet")) == deep
    gemms = floor.step_gemms("SimpleConvNet", batch=2)
    # conv1: col @ col_W twice, col.T @ dout; then Affine1's x @ W
    assert gemms[:4] == [(2 * 576, 25, 30, False, True)] * 2 + [(25, 2 * 576, 30, True, False),
                                                             (2, 4320, 100, False, False)]
    got = floor.measure("SimpleConvNet", 1, batch=2)
    assert all(0 < got[k] < 60 for k in ("book", "fastconv", "gemms", "peak")), got
