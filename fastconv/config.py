"""Runtime configuration of fastconv: threads, parallel on/off, fastmath, cache, dtype mode.

Every Numba kernel of fastconv is compiled through :func:`kernel` (or :func:`helper` and
:func:`inline` for the functions kernels call, and ``kernels._launch.launchable`` for the
kernels that run on the launcher's parallel loop), so these are the only switches. Importing
fastconv changes nothing outside it: no environment variable, no malloc or BLAS setting.
While a fastconv kernel calls BLAS from its threads, BLAS runs on one thread
(``kernels._blas.one_blas_thread``), and gets its own thread count back afterwards.

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
    ``NUMBA_CACHE_DIR``), so a new process does not compile them again. A cached kernel is
    used only while every source it was compiled from is unchanged (:data:`SOURCES_KEY`).
``FASTCONV_BLAS``
    Which BLAS the kernels' GEMMs call: ``numpy`` (NumPy's own library), ``scipy`` (SciPy's
    ``cython_blas``) or ``auto`` (default: the first of the two that the process offers).
    See ``fastconv info`` for the one in use.
``FASTCONV_FASTMATH``
    ``0`` (default). ``1`` lets LLVM reorder sums and drop NaN checks: faster, but the results
    are then no longer bit-stable and NaN no longer propagates. Needs a new process.
``FASTCONV_THREADING_LAYER``
    Numba threading layer to use (``omp``, ``tbb``, ``workqueue``); unset, Numba chooses
    (``NUMBA_THREADING_LAYER``, else tbb, omp, workqueue in that order).
``FASTCONV_KEEP_DTYPE``
    ``0`` (default): the book's rule, im2col-based layers compute and return float64.
    ``1``: layers keep float32 end to end (the "float32 mode").
"""
import glob
import hashlib
import os
import types

import numba
from numba.core import caching, compiler, types as nb_types
from numba.core.registry import CPUDispatcher

__all__ = ["kernel", "helper", "inline", "set_num_threads", "get_num_threads", "set_parallel",
           "parallel_enabled", "set_keep_dtype", "keep_dtype", "CACHE", "FASTMATH",
           "BLAS_ROUTE", "SOURCES_KEY", "cache_dir", "threading_layer"]


def _env_flag(name, default):
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() not in ("0", "false", "no", "off")


CACHE = _env_flag("FASTCONV_CACHE", True)
FASTMATH = _env_flag("FASTCONV_FASTMATH", False)
BLAS_ROUTE = os.environ.get("FASTCONV_BLAS", "").strip().lower() or "auto"
if os.environ.get("FASTCONV_THREADING_LAYER"):  # asked for: Numba reads it at the first launch
    numba.config.THREADING_LAYER = os.environ["FASTCONV_THREADING_LAYER"]
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
        return numba.config.THREADING_LAYER


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
    # Numba's on-disk cache is keyed by the function's qualified name, not by its options, so
    # the serial and the parallel variant, and fastmath builds, need distinct names or they
    # would load each other's machine code
    suffix += "__fastmath" if FASTMATH else ""
    clone = types.FunctionType(func.__code__, func.__globals__, func.__name__ + suffix,
                               func.__defaults__, func.__closure__)
    clone.__qualname__ = func.__qualname__ + suffix
    clone.__module__ = func.__module__
    clone.__doc__ = func.__doc__
    return clone


def _sources_key():
    """SHA-256 of every source a kernel is compiled from: this file and ``kernels/*.py``."""
    here = os.path.dirname(os.path.abspath(__file__))
    digest = hashlib.sha256()
    for path in [__file__] + sorted(glob.glob(os.path.join(here, "kernels", "*.py"))):
        with open(path, "rb") as f:
            digest.update(os.path.basename(path).encode() + b"\0" + f.read())
    return digest.hexdigest()


# Numba keys a cached function on its own file only, never on the files it calls into, so
# after an upgrade it could load machine code built against another version of a helper
SOURCES_KEY = _sources_key()


class _Locator:
    """Numba's cache locator of one function, its freshness stamp widened to every source."""

    def __init__(self, base):
        self.base = base

    def __getattr__(self, name):
        return getattr(self.base, name)

    def get_source_stamp(self):
        return self.base.get_source_stamp(), SOURCES_KEY


class _CacheImpl(caching.CompileResultCacheImpl):
    def __init__(self, py_func):
        super().__init__(py_func)
        self._locator = _Locator(self._locator)


class _Cache(caching.FunctionCache):
    _impl_class = _CacheImpl


class _Dispatcher(CPUDispatcher):
    """Numba's dispatcher, with the on-disk cache keyed on all of fastconv's kernel sources."""

    def enable_caching(self):
        self._cache = _Cache(self.py_func)


def jit(func, dispatcher_class=_Dispatcher, pipeline_class=None, **options):
    """``numba.njit(**options)(func)``, cached (with ``FASTCONV_CACHE``) under
    :data:`SOURCES_KEY`: every fastconv function Numba compiles goes through here."""
    dispatcher = dispatcher_class(func, targetoptions=dict(options, nopython=True),
                                  pipeline_class=pipeline_class or compiler.Compiler)
    if CACHE:
        dispatcher.enable_caching()
    return dispatcher


def cache_dir():
    """The folder that holds the compiled kernels (None with ``FASTCONV_CACHE=0``)."""
    if not CACHE:
        return None
    from .kernels import _launch
    return _Cache(_launch._each_run.py_func).cache_path


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
        opts = dict(fastmath=FASTMATH, nogil=True, error_model="numpy")
        self.serial = jit(_renamed(func, "__serial"), parallel=False, **opts)
        self.parallel = jit(_renamed(func, "__parallel"), parallel=True, **opts)

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


class _Helper(_Dispatcher):
    """A Numba dispatcher compiled once per argument types: a call from another kernel with
    constant arguments (``gemm(..., True, 1)``) does not compile a variant per constant."""

    def get_call_template(self, args, kws):
        return super().get_call_template([nb_types.unliteral(a) for a in args],
                                         {k: nb_types.unliteral(v) for k, v in kws.items()})


def helper(func=None, *, python=False, pipeline_class=None):
    """Decorator for njit helpers called from kernels (no prange; linked into each caller).
    Only a helper made with ``python=True`` can be called from Python: the others skip
    compiling the wrapper that converts Python objects. ``pipeline_class``: a Numba compiler
    pipeline in place of the default one."""
    if func is None:
        return lambda f: helper(f, python=python, pipeline_class=pipeline_class)
    return jit(_renamed(func, ""), _Helper, pipeline_class, fastmath=FASTMATH, nogil=True,
               error_model="numpy", no_cfunc_wrapper=True, no_cpython_wrapper=not python)


def inline(func):
    """Decorator for tiny njit helpers in inner loops, inlined by Numba itself (where LLVM
    would keep a call, which costs more than the loop it serves)."""
    return numba.njit(inline="always", fastmath=FASTMATH, nogil=True)(func)


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
    # after GNU OpenMP ran in the parent, run the serial kernels (as PyTorch uses one thread
    # in such a child): the same numbers, where a parallel one would kill the child
    if _gnu_openmp_started():
        _state["parallel"] = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


_threads = os.environ.get("FASTCONV_NUM_THREADS")
if _threads:
    set_num_threads(_threads)
