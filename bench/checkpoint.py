"""What checkpoints cost a training run: ``python -m bench.checkpoint [--rounds 20]``.

Per network (SimpleConvNet, DeepConvNet) and dtype, rounds interleaved: one Trainer step
(gradient, Adam update, loss; batch 100) and one checkpoint write (parameters, Adam's ``m``
and ``v``, the random state, the lists: temp file, fsync, rename, the older ones removed),
into a folder made in ``--dir`` (default: the current one, where ``fastconv train`` writes).
An epoch of MNIST's 60,000 images is 600 steps and ends with one checkpoint, so the cost of
checkpoints is ``write / (600 * step)`` of an epoch's time.
"""
import argparse
import os
import tempfile

import numpy as np

from bench.common import interleaved_timings
from fastconv import config
from fastconv.models import DeepConvNet, SimpleConvNet
from fastconv.trainer import Trainer

NETWORKS = {"SimpleConvNet": SimpleConvNet, "DeepConvNet": DeepConvNet}
STEPS_PER_EPOCH = 60000 // 100


def step_and_write(cls, dtype, folder, n_train=1000):
    """(one Trainer step, one checkpoint write, the file's bytes) as functions."""
    rng = np.random.default_rng(0)
    x = rng.random((n_train, 1, 28, 28)).astype(dtype)
    t = rng.integers(0, 10, n_train)
    np.random.seed(0)
    trainer = Trainer(cls(dtype=dtype), x, t, x[:100], t[:100], epochs=1, mini_batch_size=100,
                      optimizer='Adam', optimizer_param={'lr': 0.001}, verbose=False,
                      checkpoint_dir=folder)
    trainer.train_step()  # the first step evaluates the epoch's accuracy

    def size():
        return os.path.getsize(trainer.checkpoints.lineage[-1])
    return trainer.train_step, trainer.save_checkpoint, size


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.checkpoint",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    parser.add_argument("--dtypes", nargs="+", default=["float64", "float32"],
                        choices=["float64", "float32"])
    parser.add_argument("--dir", default=".", help="where the checkpoint folder is made")
    args = parser.parse_args(argv)

    print(f"{config.get_num_threads()} threads, {args.rounds} interleaved rounds, medians; "
          f"checkpoints in {os.path.abspath(args.dir)}")
    print("| network | dtype | step ms | checkpoint write ms | checkpoint MB | "
          f"write / epoch ({STEPS_PER_EPOCH} steps) |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for name in args.networks:
        for dtype_name in args.dtypes:
            dtype = np.dtype(dtype_name).type
            previous = config.keep_dtype()
            config.set_keep_dtype(dtype == np.float32)
            try:
                with tempfile.TemporaryDirectory(dir=args.dir, prefix=".bench-ckpt-") as folder:
                    step, write, size = step_and_write(NETWORKS[name], dtype, folder)
                    steps, writes = interleaved_timings([step, write], args.rounds)
                    megabytes = size() / 1e6
            finally:
                config.set_keep_dtype(previous)
            step_s, write_s = np.median(steps), np.median(writes)
            share = write_s / (STEPS_PER_EPOCH * step_s)
            print(f"| {name} | {dtype_name} | {1e3 * step_s:.1f} | {1e3 * write_s:.1f} | "
                  f"{megabytes:.1f} | {100 * share:.2f} % |", flush=True)


if __name__ == "__main__":
    main()
