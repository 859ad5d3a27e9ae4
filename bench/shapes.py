"""The shapes benchmarked: every convolution and pooling of the book's two networks at batch
100, plus one small shape on which the plain Python loops run too.

``FASTCONV_BENCH_SMOKE=1`` (or ``pytest bench --bench-smoke``) keeps the layer configurations
but takes batch 2, so the whole suite runs in seconds (CI).
"""
import os
from dataclasses import dataclass

__all__ = ["Shape", "smoke", "conv_shapes", "pool_shapes", "shapes_for", "BATCH",
           "SMALL_CONV", "SMALL_POOL"]

BATCH = 100


def smoke():
    """Whether smoke mode (tiny batch) is on."""
    return os.environ.get("FASTCONV_BENCH_SMOKE", "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True, eq=False)  # hashed by identity: spec is a dict
class Shape:
    """A named argument spec for :func:`registry.make_args` (``x`` and ``W`` or ``pool``)."""
    name: str
    spec: dict
    small: bool = False  # the plain loops run only on small shapes

    def describe(self):
        s = self.spec
        window = "W=%s" % (tuple(s["W"]),) if "W" in s else "pool=%dx%d" % tuple(s["pool"])
        return f"x={tuple(s['x'])} {window} stride={s['stride']} pad={s['pad']}"


def _conv(x, W, pad):
    return {"x": x, "W": W, "stride": 1, "pad": pad}


def _pool(x):
    return {"x": x, "pool": (2, 2), "stride": 2, "pad": 0}


SMALL_CONV = Shape("small", _conv((2, 3, 10, 10), (4, 3, 3, 3), 1), small=True)
SMALL_POOL = Shape("small", _pool((2, 4, 10, 10)), small=True)

# SimpleConvNet (ch07): conv 30x5x5 pad 0, pool 2x2. DeepConvNet (ch08): six 3x3 convs
# (16, 16, 32, 32 with pad 2, 64, 64), a 2x2 pool after every second one.
_CONV = [
    ("simple_conv1", (1, 28, 28), (30, 1, 5, 5), 0),
    ("deep_conv1", (1, 28, 28), (16, 1, 3, 3), 1),
    ("deep_conv2", (16, 28, 28), (16, 16, 3, 3), 1),
    ("deep_conv3", (16, 14, 14), (32, 16, 3, 3), 1),
    ("deep_conv4", (32, 14, 14), (32, 32, 3, 3), 2),
    ("deep_conv5", (32, 8, 8), (64, 32, 3, 3), 1),
    ("deep_conv6", (64, 8, 8), (64, 64, 3, 3), 1),
]
_POOL = [
    ("simple_pool1", (30, 24, 24)),
    ("deep_pool1", (16, 28, 28)),
    ("deep_pool2", (32, 16, 16)),
    ("deep_pool3", (64, 8, 8)),
]


def _batch():
    return 2 if smoke() else BATCH


def _suffix(N):
    return "" if N == BATCH else f"@N{N}"


def conv_shapes():
    """SMALL_CONV and the seven convolutions of the two networks."""
    N = _batch()
    return [SMALL_CONV] + [Shape(name + _suffix(N), _conv((N,) + chw, W, pad))
                           for name, chw, W, pad in _CONV]


def pool_shapes():
    """SMALL_POOL and the four max-pooling layers of the two networks."""
    N = _batch()
    return [SMALL_POOL] + [Shape(name + _suffix(N), _pool((N,) + chw)) for name, chw in _POOL]


def shapes_for(op):
    """Shapes of one registry op (im2col and col2im take the convolutions' windows)."""
    return pool_shapes() if "pool" in op else conv_shapes()
