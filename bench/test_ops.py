"""Every op x shape x dtype x implementation of the registry, one benchmark group each.

Groups are named ``op|shape|dtype`` (e.g. ``conv_forward|deep_conv2|float32``), the benchmark
name inside a group is the implementation. Only ``run`` is timed: ``prepare`` (the book's
col kept from the forward pass, tensor conversion) and ``finish`` are not.
"""
import pytest

import registry
from bench import shapes
from bench.common import DTYPES, op_args, skip_reason, thread_info

CASES = [(op, shape, dtype, name)
         for op in registry.OPS
         for shape in shapes.shapes_for(op)
         for dtype in DTYPES
         for name in registry.IMPL_NAMES]


@pytest.mark.parametrize("op, shape, dtype, impl_name", CASES,
                         ids=[f"{op}|{s.name}|{dt}|{name}" for op, s, dt, name in CASES])
def test_op(benchmark, op, shape, dtype, impl_name):
    reason = skip_reason(op, shape, impl_name)
    if reason:
        pytest.skip(reason)
    impl = registry.REGISTRY[op][impl_name]
    args = op_args(op, shape, dtype)
    if not impl.supports(*args):
        pytest.skip(f"{impl_name} cannot run {op} on {shape.describe()}")
    state = impl.prepare(*args)
    impl.run(state)  # JIT compilation and first touch, outside the timings

    benchmark.group = f"{op}|{shape.name}|{dtype}"
    benchmark.name = impl_name
    benchmark.extra_info.update(op=op, shape=shape.name, spec=shape.describe(), dtype=dtype,
                                impl=impl_name, **thread_info())
    benchmark(impl.run, state)
