"""Parallel runs of a serial Numba function, through one parallel loop compiled once.

A kernel written with ``prange`` compiles, for each set of argument types, into a parallel
function of its own: Numba's parfor pass and a second LLVM module, the larger part of
fastconv's compile time. Here the work of a kernel is a plain function, ``run(r, n_runs,
*args)``, the work of run ``r``, made with :func:`launchable`; :func:`launch` runs it for
every ``r``::

    launch(run, n_runs, *args)          Python: the arguments into 8-byte slots
      _each_run(entry, n_runs, slots)     one prange loop for every launch, compiled once
        entry(r, n_runs, slots)             compiled with run: the arguments out of the
          run(r, n_runs, *args)             slots, then the work of run r

``entry`` is compiled into run's own machine code (and Numba's cache) for each set of
argument types, so nothing else compiles per type. An array goes into the slots as Numba's
array structure without its reference count (``meminfo`` and ``parent`` null, as Numba's own
parallel loops pass arrays): the caller holds it until every run has returned.
"""
import collections
import ctypes
import struct

import numba
import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils, compiler, compiler_machinery, lowering, typed_passes
from numba.extending import intrinsic

from .. import config
from ..config import helper

__all__ = ["launchable", "launch", "threads"]

_I32, _I64, _BYTES = ir.IntType(32), ir.IntType(64), ir.IntType(8).as_pointer()
# entry(r, n_runs, slots) -> nonzero when run r raised
_ENTRY = ir.FunctionType(_I32, [_I64, _I64, _BYTES])
_ENTRY_C = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p)
# an array in slots: meminfo, parent, nitems, itemsize, data, shape[ndim], strides[ndim]
_ARRAY_SLOTS = 5


def _entry_name(fndesc):
    return fndesc.llvm_func_name + "__fastconv_entry"


def _scalar_format(ty):
    """struct format of a scalar argument in its 8-byte slot, or None if not supported."""
    if isinstance(ty, types.Boolean):
        return "?7x"
    if isinstance(ty, types.Integer):
        code = {8: "b", 16: "h", 32: "i", 64: "q"}[ty.bitwidth]
        pad = f"{8 - ty.bitwidth // 8}x" if ty.bitwidth < 64 else ""
        return (code if ty.signed else code.upper()) + pad
    if isinstance(ty, types.Float):
        return {32: "f4x", 64: "d"}[ty.bitwidth]
    if ty == types.none:
        return "q"
    return None


def _add_entry(context, library, fndesc):
    """Add the function ``entry(r, n_runs, slots)`` that calls ``run`` to run's library."""
    module = context.create_module("fastconv_entry")
    run = cgutils.get_or_insert_function(
        module, context.call_conv.get_function_type(fndesc.restype, fndesc.argtypes),
        fndesc.llvm_func_name)
    fn = cgutils.get_or_insert_function(module, _ENTRY, _entry_name(fndesc))
    builder = ir.IRBuilder(fn.append_basic_block())
    r, n_runs, packed = fn.args
    slots = builder.bitcast(packed, _I64.as_pointer())
    args, k = [r, n_runs], 0
    for ty in fndesc.argtypes[2:]:
        at, llty = cgutils.gep(builder, slots, k), context.get_value_type(ty)
        if isinstance(ty, types.Array):  # numba's array structure, every field 8 bytes
            assert context.get_abi_sizeof(llty) == 8 * (_ARRAY_SLOTS + 2 * ty.ndim)
            args.append(builder.load(builder.bitcast(at, llty.as_pointer())))
            k += _ARRAY_SLOTS + 2 * ty.ndim
            continue
        if isinstance(ty, types.Boolean):  # a byte in memory, i1 as a value
            byte = builder.load(builder.bitcast(at, _BYTES))
            args.append(builder.icmp_unsigned("!=", byte, ir.Constant(byte.type, 0)))
        elif ty == types.none:
            args.append(cgutils.get_null_value(llty))
        else:  # the value in the slot's first bytes, where struct packs it
            args.append(builder.load(builder.bitcast(at, llty.as_pointer())))
        k += 1
    status, _ = context.call_conv.call_function(builder, run, fndesc.restype, fndesc.argtypes,
                                                args)
    builder.ret(builder.zext(status.is_error, _I32))
    library.add_ir_module(module)


class _EntryLower(lowering.Lower):
    def lower(self):
        super().lower()
        _add_entry(self.context, self.library, self.fndesc)


# a reload (IPython's autoreload) runs this module again in the same globals: the pass it
# registers again needs a name of its own, as Numba refuses a registered name
_loads = globals().get("_loads", 0) + 1


@compiler_machinery.register_pass(mutates_CFG=True, analysis_only=False)
class _EntryLowering(typed_passes.NativeLowering):
    """Numba's lowering, plus the entry a launch calls."""
    _name = "fastconv_entry_lowering" + ("" if _loads == 1 else f"_{_loads}")

    @property
    def lowering_class(self):
        return _EntryLower


class _LaunchableCompiler(compiler.Compiler):
    def define_pipelines(self):
        pm = compiler.DefaultPassBuilder.define_nopython_pipeline(self.state)
        lowering = [i for i, (p, _) in enumerate(pm.passes) if p is typed_passes.NativeLowering]
        if len(lowering) != 1:  # the entry is added by the one lowering pass it replaces
            raise RuntimeError(f"launch: Numba {numba.__version__}'s nopython pipeline has "
                               f"{len(lowering)} NativeLowering passes; fastconv expects one")
        pm.passes[lowering[0]] = (_EntryLowering, pm.passes[lowering[0]][1])
        pm.finalize()
        return [pm]


def launchable(func):
    """Decorator: compile ``func(r, n_runs, *args)`` (no ``prange``, returns None) so that
    :func:`launch` can run it (Python cannot call it directly)."""
    return helper(func, pipeline_class=_LaunchableCompiler)


@intrinsic
def _call(typingctx, entry, r, n_runs, slots):
    """``entry(r, n_runs, slots)``, entry and slots given by their addresses."""
    def codegen(context, builder, sig, args):
        entry, r, n_runs, slots = args
        return builder.call(builder.inttoptr(entry, _ENTRY.as_pointer()),
                            [r, n_runs, builder.inttoptr(slots, _BYTES)])

    return types.int32(types.int64, types.int64, types.int64, types.int64), codegen


def _each_run(entry, n_runs, slots, failed):
    # the parallel loop of every launch: one iteration per run; failed[r]: whether run r raised
    # (an array, not a sum: a prange reduction takes twice as long to compile)
    for r in prange(n_runs):
        failed[r] = _call(entry, r, n_runs, slots)


_each_run = config.jit(_each_run, parallel=True, nogil=True)


_Entry = collections.namedtuple("_Entry", "address call slots")
_entries = {}  # (run, argument keys) -> _Entry of run compiled for those argument types
_TYPE_FLAGS = 0x503  # C and F contiguous, aligned, writeable: what Numba's array type says
_BUFFER_FLAGS = 0x401  # C contiguous and writeable: what ctypes' from_buffer takes


def _slots(args):
    """(the key of the argument types, the values that go into the slots)."""
    key, values = [], []
    for a in args:
        if isinstance(a, np.ndarray):
            flags = a.flags.num
            key.append((a.dtype, a.ndim, flags & _TYPE_FLAGS))
            # the first item's address: from_buffer is faster than a.ctypes, where it applies
            data = (ctypes.addressof(ctypes.c_char.from_buffer(a))
                    if flags & _BUFFER_FLAGS == _BUFFER_FLAGS and a.size else a.ctypes.data)
            values += (0, 0, a.size, a.itemsize, data, *a.shape, *a.strides)
        else:
            key.append(type(a))
            values.append(0 if a is None else a)
    return tuple(key), values


def _type(run, i, a):
    try:
        ty = numba.typeof(a)
    except (ValueError, numba.core.errors.NumbaError):  # a non-native byte order, say
        ty = None
    if ty is None or not isinstance(ty, types.Array) and _scalar_format(ty) is None:
        what = f"array of dtype {a.dtype}" if isinstance(a, np.ndarray) else type(a).__name__
        raise TypeError(f"launch: argument {i} of {run.__name__} is a {what}; runs take "
                        "native-endian arrays, numbers, booleans and None")
    return ty


def _entry(run, args):
    argtypes = tuple(_type(run, i, a) for i, a in enumerate(args))
    formats = ["q" * (_ARRAY_SLOTS + 2 * t.ndim) if isinstance(t, types.Array)
               else _scalar_format(t) for t in argtypes]
    sig = (types.int64, types.int64) + argtypes
    run.compile(sig)
    result = run.overloads[sig]
    if result.signature.return_type != types.none:
        raise TypeError(f"launch: {run.__name__} must return None")
    address = result.library.get_pointer_to_function(_entry_name(result.fndesc))
    if not address:  # a run compiled without the entry pass (from a stale cache, say)
        raise RuntimeError(f"launch: {run.__name__} was compiled without its entry")
    return _Entry(address, _ENTRY_C(address), struct.Struct("=" + "".join(formats)))


def _in_this_thread(entry, n_runs, slots):
    # the runs one after another (the call releases the GIL, as the kernels do)
    return sum(entry.call(r, n_runs, slots) for r in range(n_runs))


def threads():
    """How many runs go at once: fastconv's thread count, or 1 with parallel kernels off."""
    return config.get_num_threads() if config.parallel_enabled() else 1


def launch(run, n_runs, *args):
    """Call ``run(r, n_runs, *args)`` (made with :func:`launchable`) for ``r`` in
    ``0 .. n_runs - 1``: on parallel threads, or on this one when ``n_runs`` is 1. An
    exception raised in a run is raised again here. With parallel kernels off
    (:func:`fastconv.config.set_parallel`), the runs go one after another on this thread."""
    key, values = _slots(args)
    entry = _entries.get((run, key))
    if entry is None:
        entry = _entries[run, key] = _entry(run, args)
    slots = ctypes.create_string_buffer(entry.slots.size)
    entry.slots.pack_into(slots, 0, *values)
    if n_runs > 1 and config.parallel_enabled():
        runs_failed = np.zeros(n_runs, dtype=np.int32)
        _each_run(entry.address, n_runs, ctypes.addressof(slots), runs_failed)
        failed = np.count_nonzero(runs_failed)
    else:
        failed = _in_this_thread(entry, n_runs, ctypes.addressof(slots))
    if failed:  # run them again, compiled with Python's exceptions, to raise here
        again = numba.njit(run.py_func)
        for r in range(n_runs):
            again(r, n_runs, *args)
        raise RuntimeError(f"launch: {run.__name__} failed")
