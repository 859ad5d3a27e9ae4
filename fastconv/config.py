"""Runtime configuration of fastconv: threads, parallel on/off, fastmath, cache, dtype mode.

Every Numba kernel of fastconv is compiled through :func:`kernel`, so these are the only
switches; no decorator anywhere else hard-codes an option.

Environment variables (read once, at import):

``FASTCONV_NUM_THREADS``
    Numba threads used by the parallel kernels (default: Numba's own default, the core count).
``FASTCONV_PARALLEL``
    ``1`` (default) runs the ``prange`` variants, ``0`` the serial ones. A process forked
    (``multiprocessing`` with ``fork``) after its parent ran a parallel kernel on GNU OpenMP
    (Numba's ``omp`` layer on Linux) runs the serial ones: libgomp cannot start again in a
    forked child, and Numba would kill it. Use the ``spawn`` start method, or the ``tbb`` or
    ``workqueue`` layer, for parallel kernels in children.
``FASTCONV_CACHE``
    ``1`` (default) caches compiled kernels on disk (``__pycache__`` beside the sources, or
    ``NUMBA_CACHE_DIR``), so a new process starts in about a second instead of ten.
``FASTCONV_FASTMATH``
    ``0`` (default). ``1`` lets LLVM reorder sums and drop NaN checks: faster, but the results
    are then no longer bit-stable and NaN no longer propagates. Needs a new process.
``FASTCONV_THREADING_LAYER``
    Numba threading layer (default: ``NUMBA_THREADING_LAYER``, else Numba's own choice, tbb
    then omp then workqueue).

Thread hand-over with BLAS. A convolution alternates OpenBLAS GEMMs and Numba kernels on the
same cores. Measured on 2 cores (bench/README): idle OpenBLAS threads spin for a long time and
delayed the next Numba launch from 4 us to 3.8 ms; OpenMP's workers spin too; ``workqueue``
never spins but costs ~110 us a launch. fastconv therefore sets, unless already set,
``GOMP_SPINCOUNT=10000`` here and ``OPENBLAS_THREAD_TIMEOUT=4`` in ``fastconv/__init__``.
OpenBLAS reads the latter when NumPy loads it; when NumPy was imported before fastconv (and
the variable was not set), :func:`reread_openblas_env` makes the loaded OpenBLAS read it
again. With both, a launch after a GEMM takes ~6-45 us.
``FASTCONV_MALLOC``
    ``1`` (default, Linux with glibc): at import, fastconv asks malloc to serve arrays up to
    32 MB from its heap and to keep up to 256 MB of freed heap instead of returning it to the
    system. Otherwise each training step's 10-14 MB activations came from fresh pages, with
    up to ~600 page faults a SimpleConvNet step (2-4 ms of 22-26). ``0`` leaves malloc alone.
``FASTCONV_NUMBA_BLAS``
    ``1`` (default): when SciPy is installed, the convolution calls its GEMMs from inside Numba,
    a sample at a time with no Python in between (``kernels.conv_blas``): NumPy's OpenBLAS
    through its CBLAS (``kernels._blas``), or, where NumPy's BLAS has none, Numba's ``np.dot``
    (which goes through ``scipy.linalg.cython_blas``). ``0``, or no SciPy: the same GEMMs
    through NumPy's ``matmul``, a block of samples per call.
``FASTCONV_KEEP_DTYPE``
    ``0`` (default): the book's rule, im2col-based layers compute and return float64.
    ``1``: layers keep float32 end to end (the "float32 mode").
"""
import contextlib
import ctypes
import itertools
import os
import sys
import types
from concurrent.futures import ThreadPoolExecutor

import numba

__all__ = ["kernel", "helper", "inline", "run_tasks", "run_workers", "set_num_threads",
           "get_num_threads", "set_parallel", "parallel_enabled", "set_keep_dtype", "keep_dtype",
           "CACHE", "FASTMATH", "THREADING_LAYER", "threading_layer", "reread_openblas_env",
           "openblas_controllers"]


def _env_flag(name, default):
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() not in ("0", "false", "no", "off")


CACHE = _env_flag("FASTCONV_CACHE", True)
THREADING_LAYER = os.environ.get("FASTCONV_THREADING_LAYER") or os.environ.get(
    "NUMBA_THREADING_LAYER") or "default"
# read by Numba (and libgomp) when the first parallel kernel launches, so set before that
numba.config.THREADING_LAYER = THREADING_LAYER
os.environ.setdefault("GOMP_SPINCOUNT", "10000")
FASTMATH = _env_flag("FASTCONV_FASTMATH", False)
_state = {
    "parallel": _env_flag("FASTCONV_PARALLEL", True),
    "keep_dtype": _env_flag("FASTCONV_KEEP_DTYPE", False),
}


def set_num_threads(n):
    """Set the number of Numba threads used by parallel kernels (1 .. NUMBA_NUM_THREADS)."""
    n = int(n)
    if not 1 <= n <= numba.config.NUMBA_NUM_THREADS:
        raise ValueError(f"threads must be in 1..{numba.config.NUMBA_NUM_THREADS}, got {n}")
    numba.set_num_threads(n)


def get_num_threads():
    """Number of Numba threads parallel kernels use now."""
    return numba.get_num_threads()


def threading_layer():
    """The Numba threading layer in use (after the first parallel call) or configured."""
    try:
        return numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        return THREADING_LAYER


def reread_openblas_env():
    """Make every loaded OpenBLAS read its environment variables again and restart its threads,
    which then take ``OPENBLAS_THREAD_TIMEOUT``. Called by ``import fastconv`` when NumPy was
    imported first: OpenBLAS reads the variable only when it loads, and its idle threads kept
    spinning after each GEMM, starving the Numba kernels (a DeepConvNet float32 step took
    1.8x as long, bench/README). Returns how many libraries were changed; other BLAS (MKL,
    Accelerate) and OpenBLAS builds without these exported functions are left alone."""
    changed = 0
    for lib in (c.dynlib for c in openblas_controllers()):
        if hasattr(lib, "openblas_read_env") and hasattr(lib, "blas_thread_shutdown_"):
            lib.openblas_read_env()
            # the threads restart at the next multithreaded call, with the new timeout
            lib.blas_thread_shutdown_()
            changed += 1
    return changed


def openblas_controllers():
    """threadpoolctl's controllers of the OpenBLAS libraries loaded in this process (NumPy's,
    SciPy's), [] without threadpoolctl (optional: then fastconv leaves BLAS alone)."""
    try:
        from threadpoolctl import ThreadpoolController
        return [c for c in ThreadpoolController().lib_controllers
                if c.internal_api == "openblas"]
    except Exception:
        return []


def set_parallel(flag):
    """Run the parallel (``True``) or serial (``False``) variant of every kernel."""
    _state["parallel"] = bool(flag)


def parallel_enabled():
    """Whether kernels currently run their parallel variants."""
    return _state["parallel"]


def set_keep_dtype(flag):
    """float32 mode on (``True``) or the book's float64 rule (``False``, default)."""
    _state["keep_dtype"] = bool(flag)


def keep_dtype():
    """Whether layers keep float32 data in float32 (see module docstring)."""
    return _state["keep_dtype"]


def _renamed(func, suffix):
    # Numba's on-disk cache is keyed by the function's qualified name, so the serial and the
    # parallel variant of one Python function need distinct names or they would load each
    # other's machine code.
    clone = types.FunctionType(func.__code__, func.__globals__, func.__name__ + suffix,
                               func.__defaults__, func.__closure__)
    clone.__qualname__ = func.__qualname__ + suffix
    clone.__module__ = func.__module__
    clone.__doc__ = func.__doc__
    return clone


class _Kernel:
    """Serial and parallel Numba variants of one Python loop function.

    Calling it runs the variant chosen by :func:`set_parallel`; ``.serial`` and ``.parallel``
    give direct access (tests and benchmarks compare them); :meth:`sized` picks by size.
    """

    def __init__(self, func, serial_below=0):
        self.py_func = func
        self.serial_below = serial_below
        self.__name__ = func.__name__
        self.__doc__ = func.__doc__
        opts = dict(cache=CACHE, fastmath=FASTMATH, nogil=True)
        self.serial = numba.njit(parallel=False, **opts)(_renamed(func, "__serial"))
        self.parallel = numba.njit(parallel=True, **opts)(_renamed(func, "__parallel"))

    def __call__(self, *args):
        if _state["parallel"]:
            return self.parallel(*args)
        return self.serial(*args)

    def sized(self, n):
        """What runs a call on ``n`` values: the serial variant below ``serial_below`` (there
        a parallel launch costs more than the loop), else this kernel as called."""
        return self.serial if n < self.serial_below else self


def kernel(func=None, *, serial_below=0):
    """Decorator: compile ``func`` (loops written with ``numba.prange``) serial and parallel.
    ``@kernel(serial_below=N)``: :meth:`_Kernel.sized` runs fewer than N values serially."""
    if func is None:
        return lambda f: _Kernel(f, serial_below)
    return _Kernel(func, serial_below)


def helper(func):
    """Decorator for small njit helpers called from kernels (inlined by LLVM, no prange)."""
    return numba.njit(cache=CACHE, fastmath=FASTMATH, nogil=True)(func)


def inline(func):
    """Decorator for tiny njit helpers in inner loops, inlined by Numba itself: a call that
    LLVM does not inline costs more than copying a 24-item row (2.6-3.1x slower,
    ``python -m bench.micro``)."""
    return numba.njit(inline="always", fastmath=FASTMATH, nogil=True)(func)


_pool = {"size": 0, "executor": None}


def _gnu_openmp_started():
    """Whether this process has launched a parallel kernel on GNU OpenMP, which cannot run
    again in a forked child (libgomp is not fork-safe; Numba then kills the child)."""
    try:
        if numba.threading_layer() != "omp":
            return False
        from numba.np.ufunc import omppool
        return omppool.openmp_vendor == "GNU"
    except (ValueError, ImportError, AttributeError):  # no parallel kernel has run yet
        return False


def _after_fork_in_child():
    # a forked child has none of the parent's worker threads: start a new pool there; and
    # after GNU OpenMP ran in the parent, run the serial kernels (as PyTorch uses one thread
    # in such a child): the same numbers, where a parallel one would kill the child
    _pool["size"] = 0
    _pool["executor"] = None
    if _gnu_openmp_started():
        _state["parallel"] = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def run_workers():
    """How many threads :func:`run_tasks` runs tasks on (at most; never more than tasks)."""
    return get_num_threads() if _state["parallel"] else 1


def run_tasks(task, n_tasks):
    """Run ``task(i)`` for i in range(n_tasks) on the calling thread and up to
    :func:`get_num_threads` - 1 worker threads (all inline when parallel is off or one thread
    is set).

    For loops around BLAS calls, which release the GIL. Each thread takes the next task
    number from a shared counter, so a call wakes each worker once, not once per task. The
    tasks must write disjoint outputs, so the result does not depend on which thread ran
    which task.
    """
    workers = min(run_workers(), n_tasks)
    if workers <= 1:
        # BLAS on one thread here too: the tasks' GEMMs are per-sample sized, and OpenBLAS
        # splitting each across its threads cost 7-11% on DeepConvNet's convolutions
        with _single_threaded_blas():
            for i in range(n_tasks):
                task(i)
        return
    if _pool["size"] != workers - 1:
        if _pool["executor"] is not None:
            _pool["executor"].shutdown()
        _pool["executor"] = ThreadPoolExecutor(workers - 1, thread_name_prefix="fastconv")
        _pool["size"] = workers - 1
    counter = itertools.count()  # next() on it is atomic under the GIL

    def drain():
        for i in counter:
            if i >= n_tasks:
                return
            task(i)

    with _single_threaded_blas():
        helpers = [_pool["executor"].submit(drain) for _ in range(workers - 1)]
        try:
            drain()
        finally:
            for h in helpers:  # wait for every helper before returning or raising
                h.exception()
    for h in helpers:
        h.result()  # re-raise a helper's exception


def _single_threaded_blas():
    """Context: BLAS on one thread while our workers each call it. Multithreaded OpenBLAS
    calls from two workers serialise on its lock and wake its sleeping threads every call:
    DeepConvNet's conv2 backward took 91 instead of 26 ms (bench.conv_paths)."""
    if _pool.get("blas") is None:
        try:
            from threadpoolctl import ThreadpoolController
            _pool["blas"] = ThreadpoolController()
        except ImportError:  # optional: without it, BLAS keeps its own thread count
            _pool["blas"] = False
    if not _pool["blas"]:
        return contextlib.nullcontext()
    return _pool["blas"].limit(limits=1, user_api="blas")


def _tune_malloc():
    """glibc's mallopt (see FASTCONV_MALLOC above); False where there is no glibc."""
    if not sys.platform.startswith("linux") or not _env_flag("FASTCONV_MALLOC", True):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
        return bool(libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
                    and libc.mallopt(M_TRIM_THRESHOLD, 256 << 20))
    except (OSError, AttributeError):  # musl and other C libraries: nothing to tune
        return False


MALLOC_TUNED = _tune_malloc()


def _numba_blas():
    if not _env_flag("FASTCONV_NUMBA_BLAS", True):
        return False
    try:
        # loaded now, before run_tasks first lists the BLAS libraries to hold to one thread:
        # SciPy's OpenBLAS is a second library beside NumPy's, and two workers each calling a
        # multithreaded one took 10-100x longer (DeepConvNet's conv2 backward: 1.1 s, not 18 ms)
        import scipy.linalg.cython_blas  # noqa: F401
    except ImportError:
        return False
    return True


NUMBA_BLAS = _numba_blas()

_threads = os.environ.get("FASTCONV_NUM_THREADS")
if _threads:
    set_num_threads(_threads)
