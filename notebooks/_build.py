"""Write the notebooks of this folder from the cell sources below, and optionally run them.

The cell sources live here so that a change to a notebook is a readable diff of Python strings;
the ``.ipynb`` files are generated from them and kept executed, with their outputs, so that they
read well on a web page.

Usage (from the repository root)::

    python notebooks/_build.py                        # write the three notebooks, no outputs
    FASTCONV_DATA=/path/to/mnist python notebooks/_build.py --execute        # ... and run them
    python notebooks/_build.py --execute 02_kernels   # write all, run only the ones named

``--execute`` runs each notebook with nbclient in the ``notebooks/`` folder (the full sizes,
unless ``FASTCONV_NB_SMALL=1`` is set) and stores the outputs, plots included, in the file.
"""
import argparse
import os
import sys
import time
from pathlib import Path
from textwrap import dedent

HERE = Path(__file__).resolve().parent


def md(text):
    return ("markdown", dedent(text).strip("\n"))


def code(text):
    text = dedent(text).strip("\n")
    for key, snippet in SNIPPETS.items():  # shared snippets, on a line of their own
        text = text.replace(f"@@{key}@@", dedent(snippet).strip("\n"))
    return ("code", text)


# Shared by 02 and 03: locate the checkout, put tests/ on sys.path (naive.py, registry.py).
FIND_REPO = '''
def find_repo():
    """The fastconv checkout: the working directory or one of its parents, else the folder
    above the installed package (an editable install). It is the folder holding tests/naive.py."""
    import fastconv
    here = Path.cwd().resolve()
    for folder in (here, *here.parents, Path(fastconv.__file__).resolve().parent.parent):
        if (folder / "tests" / "naive.py").is_file():
            return folder
    raise FileNotFoundError("run this notebook inside a fastconv checkout: "
                            "tests/naive.py was not found above " + str(here))


REPO = find_repo()
if str(REPO / "tests") not in sys.path:
    sys.path.insert(0, str(REPO / "tests"))
'''

SMALL_FLAG = '''
SMALL = os.environ.get("FASTCONV_NB_SMALL", "").strip().lower() not in ("", "0", "false", "no", "off")
'''
SNIPPETS = {"FIND_REPO": FIND_REPO, "SMALL_FLAG": SMALL_FLAG}

# ------------------------------------------------------------------------------ 01 ----------
QUICKSTART = [
    md("""
    # Quick start: chapter 7 of the book, on fastconv

    This notebook runs the chapter 7 flow of *Deep Learning from Scratch*
    (ゼロから作るDeep Learning, 7.5 「CNNの実装」 and 7.6 「CNNの可視化」) with fastconv in place
    of the book's `common/` package: load MNIST, build `SimpleConvNet`, train it with the
    book's `Trainer`, plot the accuracy, and look at the first-layer filters and at the digits
    the network gets wrong.

    The code is the book's `ch07/train_convnet.py` with other imports:

    ```python
    from fastconv.datasets import load_mnist     # was: from dataset.mnist import load_mnist
    from fastconv.models import SimpleConvNet    # was: from simple_convnet import SimpleConvNet
    from fastconv.trainer import Trainer         # was: from common.trainer import Trainer
    ```

    The book trains on all 60,000 images for 20 epochs. To finish in about a minute on a
    2-core laptop, this notebook trains on the first 5,000 images for 5 epochs and tests on the
    first 1,000 test images. `fastconv train --out runs/simple` is the book's full run.
    With `FASTCONV_NB_SMALL=1` in the environment (as CI does) the notebook uses even smaller
    sizes and only checks that everything runs.
    """),
    code("""
    %matplotlib inline
    import os
    import time

    import matplotlib.pyplot as plt
    import numpy as np

    import fastconv
    from fastconv import config
    from fastconv.datasets import load_mnist
    from fastconv.functions import softmax
    from fastconv.models import SimpleConvNet
    from fastconv.trainer import Trainer
    from fastconv.util import smooth_curve

    @@SMALL_FLAG@@

    TRAIN_SIZE, TEST_SIZE, EPOCHS = (1000, 500, 2) if SMALL else (5000, 1000, 5)
    print(f"fastconv {fastconv.__version__}, {config.get_num_threads()} Numba threads")
    print(f"{'small run (FASTCONV_NB_SMALL)' if SMALL else 'default run'}: "
          f"{TRAIN_SIZE} training images, {TEST_SIZE} test images, {EPOCHS} epochs")
    """),
    md("""
    ## 1. Load MNIST

    `load_mnist` has the book's signature and returns the book's arrays. `flatten=False` keeps
    each image as a 1x28x28 block (channel, height, width), the input a convolution needs;
    `normalize=True` (the default) scales the pixels to 0..1.

    The first call downloads MNIST into `~/.cache/fastconv` (or the folder named by the
    environment variable `FASTCONV_DATA`) and checks the SHA-256 of each file; later calls
    read the cache.
    """),
    code("""
    (x_train, t_train), (x_test, t_test) = load_mnist(flatten=False)
    print("full data set:", x_train.shape, x_test.shape, x_train.dtype, "labels", t_train.dtype)

    x_train, t_train = x_train[:TRAIN_SIZE], t_train[:TRAIN_SIZE]
    x_test, t_test = x_test[:TEST_SIZE], t_test[:TEST_SIZE]
    print("used here:    ", x_train.shape, x_test.shape)
    print("images per class in the training subset:", np.bincount(t_train, minlength=10))

    fig, axes = plt.subplots(1, 12, figsize=(12, 1.5))
    for ax, image, label in zip(axes, x_train, t_train):
        ax.imshow(image[0], cmap="gray_r")
        ax.set_title(f"label {label}", fontsize=9)
        ax.axis("off")
    plt.show()
    """),
    md("""
    ## 2. Build the book's SimpleConvNet

    convolution (30 filters of 5x5) → ReLU → 2x2 max pooling → affine (100) → ReLU →
    affine (10) → softmax with loss. The constructor, the `params` keys and the random draws of
    the initial weights are the book's, so with the same `np.random.seed` the network starts
    from the same numbers as the book's code would.
    """),
    code("""
    np.random.seed(0)
    network = SimpleConvNet(input_dim=(1, 28, 28),
                            conv_param={'filter_num': 30, 'filter_size': 5, 'pad': 0, 'stride': 1},
                            hidden_size=100, output_size=10, weight_init_std=0.01)

    print("layers:", " -> ".join(network.layers), "-> SoftmaxWithLoss")
    for key, value in network.params.items():
        print(f"  {key}: {str(value.shape):16} {value.dtype}")

    W1_before = network.params['W1'].copy()  # for the filter pictures below
    """),
    md("""
    ## 3. Train with the book's Trainer

    The arguments are those of `train_convnet.py`: Adam with learning rate 0.001, mini-batches
    of 100 images, train and test accuracy measured on (at most) 1,000 images at each epoch.
    `verbose=False` keeps the notebook short: the book's Trainer prints the loss of every step.

    As in the book, the Trainer measures the accuracy when an epoch starts, right after that
    epoch's first mini-batch step: the first point is the network after one single step (not
    yet trained), the last one is the network before its last epoch. `train()` then returns the
    test accuracy after the last step, on all the test images used here.
    """),
    code("""
    trainer = Trainer(network, x_train, t_train, x_test, t_test,
                      epochs=EPOCHS, mini_batch_size=100,
                      optimizer='Adam', optimizer_param={'lr': 0.001},
                      evaluate_sample_num_per_epoch=1000, verbose=False)

    start = time.perf_counter()
    final_test_acc = trainer.train()
    seconds = time.perf_counter() - start

    steps_per_epoch = int(trainer.iter_per_epoch)
    for epoch, (train_acc, test_acc) in enumerate(zip(trainer.train_acc_list, trainer.test_acc_list)):
        print(f"epoch {epoch + 1} starts (after step {epoch * steps_per_epoch + 1:4}): "
              f"train acc {train_acc:.3f}, test acc {test_acc:.3f}")
    print(f"end of epoch {EPOCHS} (after step {trainer.max_iter:4}): "
          f"final test acc {final_test_acc:.3f} on {len(x_test)} test images")
    print(f"{trainer.max_iter} training steps in {seconds:.1f} s "
          f"({1000 * seconds / trainer.max_iter:.0f} ms per step of 100 images)")
    """),
    md("""
    ## 4. Accuracy and loss

    Left: the book's accuracy plot (train and test accuracy per epoch, y axis from 0 to 1; point
    `e` is measured as epoch `e + 1` starts) with the final test accuracy added as a star. Right: the loss of every mini-batch, with the
    book's `smooth_curve` through it.
    """),
    code("""
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(12, 4.2))

    epochs_axis = np.arange(len(trainer.train_acc_list))
    ax_acc.plot(epochs_axis, trainer.train_acc_list, marker='o', label='train')
    ax_acc.plot(epochs_axis, trainer.test_acc_list, marker='s', label='test')
    ax_acc.plot([EPOCHS], [final_test_acc], marker='*', markersize=14, linestyle='none',
                color='tab:red', label=f'final test ({final_test_acc:.3f})')
    ax_acc.set_xlabel("epochs")
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_ylim(0, 1.0)
    ax_acc.set_xticks(range(EPOCHS + 1))
    ax_acc.legend(loc='lower right')
    ax_acc.grid(alpha=0.3)
    ax_acc.set_title("accuracy (measured as each epoch starts; star: after the last)")

    loss = np.array(trainer.train_loss_list)
    ax_loss.plot(loss, color='tab:blue', alpha=0.35, linewidth=0.8, label='mini-batch loss')
    if len(loss) >= 22:  # smooth_curve's window is 11 steps
        ax_loss.plot(smooth_curve(loss), color='tab:blue', label='smooth_curve(loss)')
    ax_loss.set_xlabel("iterations (mini-batches of 100)")
    ax_loss.set_ylabel("loss")
    ax_loss.set_ylim(0, None)
    ax_loss.legend(loc='upper right')
    ax_loss.grid(alpha=0.3)
    ax_loss.set_title("training loss")
    fig.tight_layout()
    plt.show()
    """),
    md("""
    ## 5. First-layer filters before and after training

    The book's `ch07/visualize_filter.py` draws the 30 filters of the first layer as 5x5 grey
    images with its `filter_show` function (`gray_r`: dark = large weight). Before training they
    are random noise. After training many show structure: light-to-dark edges at some angle and
    blobs, which respond to strokes in the digits. With 5,000 images and a few epochs the
    patterns are fainter than the book's figure after 20 epochs on all 60,000 images.
    """),
    code("""
    def filter_show(filters, nx=8, title=None):
        \"""The book's filter_show: one grey image per filter (input channel 0), nx per row.\"""
        FN = filters.shape[0]
        ny = int(np.ceil(FN / nx))
        fig = plt.figure(figsize=(0.8 * nx, 0.8 * ny + 0.5))
        fig.subplots_adjust(left=0, right=1, bottom=0, top=1 - 0.5 / (0.8 * ny + 0.5),
                            hspace=0.05, wspace=0.05)
        for i in range(FN):
            ax = fig.add_subplot(ny, nx, i + 1, xticks=[], yticks=[])
            ax.imshow(filters[i, 0], cmap=plt.cm.gray_r, interpolation='nearest')
        if title:
            fig.suptitle(title)
        plt.show()


    filter_show(W1_before, title="W1 before training (random, std 0.01)")
    filter_show(network.params['W1'], title=f"W1 after {EPOCHS} epochs")
    """),
    md("""
    What a trained filter does to an image: the first convolution layer turns one digit into 30
    feature maps (24x24: a 5x5 window fits 24 times across 28 pixels). Each map is large where
    the digit has the pattern of its filter. Below: 8 filters (top) and the maps they produce
    from the first test digit (bottom).
    """),
    code("""
    digit = x_test[:1]
    maps = network.layers['Conv1'].forward(digit)  # (1, 30, 24, 24)
    print("input", digit.shape, "-> Conv1 output", maps.shape)

    fig, axes = plt.subplots(2, 9, figsize=(12, 3.2))
    axes[0, 0].imshow(digit[0, 0], cmap="gray_r")
    axes[0, 0].set_title(f"input ({t_test[0]})", fontsize=9)
    axes[1, 0].axis("off")
    for k in range(8):
        axes[0, k + 1].imshow(network.params['W1'][k, 0], cmap="gray_r", interpolation="nearest")
        axes[0, k + 1].set_title(f"filter {k}", fontsize=9)
        axes[1, k + 1].imshow(maps[0, k], cmap="gray_r")
        axes[1, k + 1].set_title(f"map {k}", fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    plt.show()
    """),
    md("""
    ## 6. Digits the network gets wrong

    `predict` gives one score per class; the largest one is the answer (the book's `accuracy`
    does exactly this). Below are the first misclassified test digits with their true label, the
    network's answer and the softmax probability it gave that answer. Many are digits a person
    would hesitate on too.
    """),
    code("""
    scores = np.concatenate([network.predict(x_test[i:i + 100]) for i in range(0, len(x_test), 100)])
    probabilities = softmax(scores)
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != t_test)
    print(f"{len(wrong)} of {len(t_test)} test images misclassified "
          f"(accuracy {1 - len(wrong) / len(t_test):.3f}, as network.accuracy gives: "
          f"{network.accuracy(x_test, t_test):.3f})")

    fig, axes = plt.subplots(2, 8, figsize=(12, 3.8))
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong):
        ax.imshow(x_test[i, 0], cmap="gray_r")
        ax.set_title(f"true {t_test[i]}, said {predicted[i]}\\n(p = {probabilities[i, predicted[i]]:.2f})",
                     fontsize=9)
    fig.tight_layout()
    plt.show()

    # which confusions are the most frequent
    pairs, counts = np.unique(np.stack([t_test[wrong], predicted[wrong]], axis=1), axis=0,
                              return_counts=True)
    top = np.argsort(-counts, kind="stable")[:5]
    print("most frequent mistakes:", ", ".join(f"{a} taken for {b} ({c}x)" for (a, b), c in
                                              zip(pairs[top], counts[top])))
    """),
    md("""
    ## Next

    * `fastconv train --out runs/simple`: the book's full run (all of MNIST, 20 epochs), with
      the same plots written as PNG files.
    * `python -m fastconv run train_convnet.py` inside the book's `ch07/` folder runs the book's
      own script on fastconv without changing a line.
    * [02_kernels.ipynb](02_kernels.ipynb): what im2col, col2im and max pooling compute.
    * [03_benchmarks.ipynb](03_benchmarks.ipynb): how fast each implementation is.
    """),
]

# ------------------------------------------------------------------------------ 02 ----------
KERNELS = [
    md("""
    # How the kernels work: im2col, col2im and max pooling with argmax

    Chapter 7 of the book (7.4 「Convolution／Poolingレイヤの実装」) turns a convolution into one
    big matrix product: `im2col` (image to column, 「im2colによる展開」) copies every window of the
    input into a row of a matrix, and `col2im` adds such rows back onto an image for the
    backward pass. Max pooling keeps, for the backward pass, *where* each maximum was
    (`arg_max`).

    fastconv computes exactly the book's results with compiled loops (Numba). Every kernel has
    two readable twins in the repository's `tests/naive.py`, and this notebook checks each
    result against both, on the small examples that learners of the book work by hand:

    * `book_*`: the book's NumPy code, line for line;
    * `loop_*`: plain Python loops over every index, the definition written out.
    """),
    code("""
    %matplotlib inline
    import inspect
    import sys
    from pathlib import Path

    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.patches import Rectangle

    from fastconv.kernels import conv, pooling
    from fastconv.kernels import im2col as im2col_kernels
    from fastconv.layers import Convolution, Pooling
    from fastconv.util import col2im, im2col


    @@FIND_REPO@@


    import naive  # tests/naive.py

    np.set_printoptions(linewidth=120)
    print("readable twins:", Path(naive.__file__).relative_to(REPO))


    def check(what, got, *twins, exact=True):
        \"""Compare fastconv's result with each (name, twin result); stop the notebook if one differs.\"""
        for name, ref in twins:
            if exact:  # bit for bit
                same = got.shape == ref.shape and np.array_equal(got, ref)
            else:      # the same numbers up to summation order
                same = got.shape == ref.shape and np.allclose(got, ref, rtol=1e-12, atol=1e-12)
            print(f"{what} {'==' if exact else '≈'} {name}: {same}")
            assert same, f"{what} differs from {name}"


    def draw_numbers(ax, a, fontsize=9):
        for (i, j), v in np.ndenumerate(a):
            ax.text(j, i, f"{v:g}", ha="center", va="center", fontsize=fontsize)


    def draw_box(ax, top, left, height, width, color, lw=3):
        ax.add_patch(Rectangle((left - 0.5, top - 0.5), width, height, fill=False, ec=color, lw=lw))
    """),
    md("""
    ## 1. im2col on a 4x4 input with a 3x3 filter, batch of 2

    Input `x` of shape (N, C, H, W) = (2, 1, 4, 4), filled with 0, 1, 2, ... so that every number
    says where it came from. A 3x3 window with stride 1 and no padding fits at
    `out_h = (H + 2*pad - FH) // stride + 1 = (4 - 3) // 1 + 1 = 2` positions down and 2 across.

    `im2col` makes one **row per window** (per output cell), ordered by sample `n`, then output
    row `oh`, then output column `ow`; and one **column per position inside the window**,
    ordered by channel `c`, then `fh`, then `fw`. So `col` has N·out_h·out_w = 2·2·2 = 8 rows and
    C·FH·FW = 1·3·3 = 9 columns.
    """),
    code("""
    x = np.arange(2 * 1 * 4 * 4, dtype=np.float64).reshape(2, 1, 4, 4)
    col = im2col(x, 3, 3, stride=1, pad=0)

    print("x[0, 0] =\\n", x[0, 0], "\\nx[1, 0] =\\n", x[1, 0])
    print("\\ncol = im2col(x, 3, 3): shape", col.shape, "\\n", col)

    check("im2col(x, 3, 3)", col,
          ("book_im2col", naive.book_im2col(x, 3, 3)),
          ("loop_im2col", naive.loop_im2col(x, 3, 3)))
    """),
    md("""
    The same in a picture: each of the four windows of sample 0 (top) becomes one row of `col`
    (bottom, rows 0 to 3); rows 4 to 7 are the windows of sample 1. Neighbouring windows
    overlap, so most input values appear in several rows: `col` is bigger than `x`
    (72 numbers from 32).
    """),
    code("""
    COLORS = ["tab:red", "tab:blue", "tab:green", "tab:orange"]
    fig = plt.figure(figsize=(11, 7))
    grid = fig.add_gridspec(2, 4, height_ratios=[1, 1.5])
    for k, (oh, ow) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        ax = fig.add_subplot(grid[0, k])
        ax.imshow(x[0, 0], cmap="Blues", vmin=0, vmax=70)
        draw_numbers(ax, x[0, 0])
        draw_box(ax, oh, ow, 3, 3, COLORS[k])
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"window (oh, ow) = ({oh}, {ow})\\n→ row {k} of col", fontsize=10, color=COLORS[k])
    ax = fig.add_subplot(grid[1, :])
    ax.imshow(col, cmap="Blues", vmin=0, vmax=70, aspect="auto")
    draw_numbers(ax, col)
    ax.set_yticks(range(8), [f"row {r}: n={r // 4}, (oh, ow)=({r % 4 // 2}, {r % 2})" for r in range(8)])
    for k, label in enumerate(ax.get_yticklabels()[:4]):
        label.set_color(COLORS[k])
    ax.set_xticks(range(9), [f"(c, fh, fw)\\n= (0, {fh}, {fw})" for fh in range(3) for fw in range(3)],
                  fontsize=8)
    ax.set_title("col = im2col(x, 3, 3), shape (8, 9)")
    fig.suptitle("top: the four 3x3 windows of sample 0, x[0, 0]")
    fig.tight_layout()
    plt.show()
    """),
    md("""
    With `pad=1` the input is framed by zeros first: now 4x4 windows fit, and the windows at
    the border read zeros from the frame.
    """),
    code("""
    col_pad = im2col(x, 3, 3, stride=1, pad=1)
    print("im2col(x, 3, 3, pad=1): shape", col_pad.shape, "(2 samples x 4 x 4 windows, 9 taps)")
    print("row 0 (the window at the top-left corner of sample 0, reaching into the padding):\\n",
          col_pad[0].reshape(3, 3))
    check("im2col(x, 3, 3, pad=1)", col_pad,
          ("book_im2col", naive.book_im2col(x, 3, 3, pad=1)),
          ("loop_im2col", naive.loop_im2col(x, 3, 3, pad=1)))
    """),
    md("""
    ## 2. The book's examples: (1, 3, 7, 7) and (10, 3, 7, 7) with a 5x5 filter

    These are the two calls the book shows when it introduces `im2col`. A 5x5 window fits
    (7 - 5) + 1 = 3 times down and across: 9 windows per image. Each window covers 3 channels of
    5x5 values: 75 columns.
    """),
    code("""
    rng = np.random.default_rng(0)

    x1 = rng.random((1, 3, 7, 7))   # batch size 1, 3 channels, 7x7
    col1 = im2col(x1, 5, 5, stride=1, pad=0)
    print(col1.shape)                # (9, 75)

    x2 = rng.random((10, 3, 7, 7))  # batch size 10
    col2 = im2col(x2, 5, 5, stride=1, pad=0)
    print(col2.shape)                # (90, 75)

    check("im2col(x1, 5, 5)", col1, ("book_im2col", naive.book_im2col(x1, 5, 5)),
          ("loop_im2col", naive.loop_im2col(x1, 5, 5)))
    check("im2col(x2, 5, 5)", col2, ("book_im2col", naive.book_im2col(x2, 5, 5)),
          ("loop_im2col", naive.loop_im2col(x2, 5, 5)))
    """),
    md("""
    ## 3. A convolution is im2col followed by one matrix product

    The book's `Convolution.forward` reshapes the filters `W` (FN, C, FH, FW) into a
    (C·FH·FW, FN) matrix `col_W`; then `col @ col_W` computes every output cell of every filter
    at once, and a reshape and transpose put the result in (N, FN, out_h, out_w) order.
    fastconv's `Convolution` layer gives the same numbers; it may sum in another order, so the
    comparison allows rounding (relative 1e-12).
    """),
    code("""
    FN = 2
    W = rng.standard_normal((FN, 3, 5, 5))
    b = rng.standard_normal(FN)

    col_W = W.reshape(FN, -1).T                                 # (75, 2)
    out = (col2 @ col_W + b).reshape(10, 3, 3, FN).transpose(0, 3, 1, 2)
    print("col", col2.shape, "@ col_W", col_W.shape, "->", (col2 @ col_W).shape, "-> out", out.shape)

    layer = Convolution(W, b, stride=1, pad=0)
    check("Convolution(W, b).forward(x2)", layer.forward(x2), ("col @ col_W (above)", out),
          ("loop_conv_forward", naive.loop_conv_forward(x2, W, b)), exact=False)
    """),
    md("""
    fastconv never builds the whole `col`. It unfolds one sample at a time into a small,
    transposed `col` that stays in the CPU cache, and calls BLAS once per sample:
    `out[n] = W @ col_n`, written straight into the (FN, out_h, out_w) planes
    (`fastconv/kernels/conv.py`). Stride-1 layers with many channels skip even that: one
    small GEMM per filter tap on shifted views of the padded sample
    (`fastconv/kernels/conv_taps.py`). The layer's `col` attribute is still the book's matrix,
    computed when you read it.
    """),
    code("""
    from fastconv.kernels import conv_taps
    for x_shape, W_shape in [((100, 1, 28, 28), (30, 1, 5, 5)),    # SimpleConvNet's conv
                             ((100, 16, 28, 28), (16, 16, 3, 3)),  # DeepConvNet's second conv
                             (x2.shape, W.shape)]:                 # the example above
        taps = conv_taps.use_taps(x_shape, W_shape, 1, 1)
        print(f"x {str(x_shape):18} W {str(W_shape):16} -> {'per-tap' if taps else 'unfold'}")

    check("layer.col", layer.col, ("im2col(x2, 5, 5)", col2))
    """),
    md("""
    ## 4. col2im: adding rows back onto the image

    In the backward pass the gradient arrives as a matrix shaped like `col` (one row per
    window). `col2im` sends every entry back to the input cell it was copied from, and **adds**
    the entries that land on the same cell: an input value used by several windows receives the
    gradient of each of them. So `col2im` is not the inverse of `im2col`:
    `col2im(im2col(x))` is `x` times the number of windows that cover each cell.

    Feeding a `col` of ones makes that count visible.
    """),
    code("""
    count_4x4 = col2im(np.ones_like(col), x.shape, 3, 3)   # the 4x4 / 3x3 example, batch of 2
    print("windows covering each cell of a 4x4 input (3x3 filter):\\n", count_4x4[0, 0])
    check("col2im(im2col(x))", col2im(col, x.shape, 3, 3), ("x * count", x * count_4x4))

    count_7x7 = col2im(np.ones_like(col1), x1.shape, 5, 5)  # the book's (1, 3, 7, 7) / 5x5
    print("\\nwindows covering each cell of a 7x7 input (5x5 filter):\\n", count_7x7[0, 0])

    dcol = rng.standard_normal(col2.shape)  # a made-up gradient for the (10, 3, 7, 7) example
    img = col2im(dcol, x2.shape, 5, 5)
    check("col2im(dcol, (10, 3, 7, 7), 5, 5)", img, ("book_col2im", naive.book_col2im(dcol, x2.shape, 5, 5)))
    # the plain loops add the same numbers in another order: equal up to rounding
    check("col2im(dcol, (10, 3, 7, 7), 5, 5)", img, ("loop_col2im", naive.loop_col2im(dcol, x2.shape, 5, 5)),
          exact=False)

    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), width_ratios=[4, 7])
    for ax, count, title in [(axes[0], count_4x4[0, 0], "4x4 input, 3x3 filter"),
                             (axes[1], count_7x7[0, 0], "7x7 input, 5x5 filter")]:
        ax.imshow(count, cmap="Oranges", vmin=0, vmax=count.max() * 1.4)
        draw_numbers(ax, count, fontsize=11)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title)
    fig.suptitle("col2im(ones): how many windows use each input cell")
    fig.tight_layout()
    plt.show()
    """),
    md("""
    ### What the compiled kernel looks like

    The kernels are ordinary Python loops compiled by Numba. Here is the source of fastconv's
    `col2im` loop: `prange` hands out whole (sample, channel) planes to the threads, so no two
    threads ever add into the same cell, and each cell adds its contributions in the book's
    order (`fh`, then `fw`). That is why the result above is equal **bit for bit** to the book's,
    on 1, 2 or 8 threads. (The plain loops of `loop_col2im` visit the windows in another order;
    floating-point addition is not associative, so they agree only up to rounding, ~1e-16.)
    """),
    code("""
    print(inspect.getsource(im2col_kernels._col2im.py_func))
    """),
    md("""
    ## 5. Max pooling and its arg_max

    2x2 max pooling with stride 2 keeps the largest value of each 2x2 block. For the backward
    pass it must remember *which* cell held the maximum: only that cell receives the gradient.
    The book keeps this in `Pooling.arg_max`, one integer per output cell: the position of the
    maximum inside its window, `fh * pool_w + fw` (0 = top-left, 1 = top-right, 2 = bottom-left,
    3 = bottom-right). The entries are in the book's flat order: entry
    `((n * out_h + oh) * out_w + ow) * C + c` is for sample `n`, output cell (`oh`, `ow`),
    channel `c` (channels vary fastest).

    When a window holds its maximum twice, the first one (in reading order) wins, as
    `np.argmax` decides in the book. The example below has such ties (channel 0 bottom-right:
    three 3s; channel 1 bottom-left: four 5s).

    fastconv's kernel finds the maximum and its position in one pass over the input
    (`fastconv.kernels.pooling.maxpool_forward(x, pool_h, pool_w, stride, pad)` returns both).
    """),
    code("""
    xp = np.array([[[[1, 3, 2, 0],
                     [4, 2, 1, 5],
                     [0, 1, 3, 3],
                     [2, 6, 3, 1]],
                    [[0, 9, 8, 1],
                     [7, 2, 3, 3],
                     [5, 5, 1, 0],
                     [5, 5, 0, 2]]]], dtype=np.float64)   # (N, C, H, W) = (1, 2, 4, 4)

    out, arg_max = pooling.maxpool_forward(xp, 2, 2, stride=2, pad=0)
    print("out (1, 2, 2, 2):\\n", out)
    print("arg_max, the book's flat layout:", arg_max)
    for i, k in enumerate(arg_max):
        n, rest = divmod(i, 2 * 2 * 2)  # out_h * out_w * C
        oh, rest = divmod(rest, 2 * 2)  # out_w * C
        ow, c = divmod(rest, 2)         # C
        fh, fw = divmod(k, 2)           # pool_w
        print(f"  entry {i}: n={n} c={c} (oh, ow)=({oh}, {ow}) -> window position {k} = (fh, fw) ({fh}, {fw}),"
              f" input cell ({2 * oh + fh}, {2 * ow + fw}), value {xp[n, c, 2 * oh + fh, 2 * ow + fw]:g}")

    book_out, book_arg = naive.book_pool_forward(xp, 2, 2, stride=2)
    loop_out, loop_arg = naive.loop_maxpool_forward(xp, 2, 2, stride=2)
    check("out", out, ("book_pool_forward", book_out), ("loop_maxpool_forward", loop_out))
    check("arg_max", arg_max, ("book_pool_forward", book_arg), ("loop_maxpool_forward", loop_arg))
    """),
    md("""
    The layer keeps the same thing: `Pooling.forward` stores the positions (fastconv stores them
    compactly, one byte per output cell) and `Pooling.arg_max` gives them in the book's layout.
    `backward` routes each incoming gradient to the cell its maximum came from; every other cell
    gets 0. Below, the incoming gradient is 1, 2, 3, ... so you can see which value went where.
    """),
    code("""
    pool = Pooling(2, 2, stride=2)
    pool_out = pool.forward(xp)
    check("Pooling.arg_max", pool.arg_max, ("maxpool_forward's arg_max", arg_max))

    dout = np.arange(1, pool_out.size + 1, dtype=np.float64).reshape(pool_out.shape)
    dx = pool.backward(dout)
    print("dout:\\n", dout, "\\ndx = pool.backward(dout):\\n", dx)
    check("dx", dx, ("book_pool_backward", naive.book_pool_backward(dout, arg_max, xp.shape, 2, 2, 2)),
          ("loop_maxpool_backward", naive.loop_maxpool_backward(dout, arg_max, xp.shape, 2, 2, 2)))

    fig, axes = plt.subplots(2, 3, figsize=(10, 6.6))
    for c in range(2):
        ax_in, ax_out, ax_dx = axes[c]
        ax_in.imshow(xp[0, c], cmap="Blues", vmin=0, vmax=15)
        draw_numbers(ax_in, xp[0, c], fontsize=11)
        for oh in range(2):
            for ow in range(2):
                draw_box(ax_in, 2 * oh, 2 * ow, 2, 2, "gray", lw=1.5)
                k = arg_max[(oh * 2 + ow) * 2 + c]
                draw_box(ax_in, 2 * oh + k // 2, 2 * ow + k % 2, 1, 1, "tab:red", lw=2.5)
        ax_in.set_title(f"x, channel {c}: red = the max that wins")
        ax_out.imshow(pool_out[0, c], cmap="Blues", vmin=0, vmax=15)
        for (oh, ow), v in np.ndenumerate(pool_out[0, c]):
            k = arg_max[(oh * 2 + ow) * 2 + c]
            ax_out.text(ow, oh, f"{v:g}\\narg_max {k}", ha="center", va="center", fontsize=11)
        ax_out.set_title("out and arg_max")
        ax_dx.imshow(dx[0, c], cmap="Greens", vmin=0, vmax=15)
        draw_numbers(ax_dx, dx[0, c], fontsize=11)
        ax_dx.set_title("dx = backward(1, 2, 3, ...)")
        for ax in (ax_in, ax_out, ax_dx):
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    plt.show()
    """),
    md("""
    Finally the book's batch example through pooling: (10, 3, 7, 7) with 2x2 windows and
    stride 2 (the last row and column of each 7x7 image are not covered, as in the book), and
    3x3 windows with stride 1, where windows overlap and `backward` adds several gradients into
    one cell, like `col2im` does.
    """),
    code("""
    for (ph, pw, stride) in [(2, 2, 2), (3, 3, 1)]:
        out, arg_max = pooling.maxpool_forward(x2, ph, pw, stride, 0)
        print(f"pool {ph}x{pw} stride {stride}: x {x2.shape} -> out {out.shape}, arg_max {arg_max.shape}")
        book_out, book_arg = naive.book_pool_forward(x2, ph, pw, stride)
        check("  out", out, ("book_pool_forward", book_out))
        check("  arg_max", arg_max, ("book_pool_forward", book_arg),
              ("loop_maxpool_forward", naive.loop_maxpool_forward(x2, ph, pw, stride)[1]))
        dout = rng.standard_normal(out.shape)
        dx = pooling.maxpool_backward(dout, arg_max, x2.shape, ph, pw, stride, 0)
        check("  dx", dx, ("book_pool_backward",
                           naive.book_pool_backward(dout, arg_max, x2.shape, ph, pw, stride)),
              ("loop_maxpool_backward",
               naive.loop_maxpool_backward(dout, arg_max, x2.shape, ph, pw, stride)), exact=False)
    """),
    md("""
    Every result in this notebook equals its twins (the cells stop with an error otherwise,
    and CI runs this notebook). The repository's tests do the same comparisons on hundreds of
    random shapes, strides, paddings and window sizes.
    """),
]

# ------------------------------------------------------------------------------ 03 ----------
BENCHMARKS = [
    md("""
    # Benchmarks: naive loops, the book's NumPy, Numba (and PyTorch)

    The repository keeps one **registry** of implementations of each operation
    (`tests/registry.py`); the tests check them against each other and the benchmark suite
    (`bench/`) times them. This notebook is a small run of that registry:

    | name | what it is |
    | --- | --- |
    | `naive` | plain Python loops (`tests/naive.py`): the definition, slow; timed on the small shape only |
    | `numpy_im2col` | the book's NumPy code as it is (im2col + `np.dot`), the baseline |
    | `numpy_strided` | NumPy's `sliding_window_view` + one matrix product: the best plain NumPy trick |
    | `numba_serial` | fastconv's compiled kernels on one thread |
    | `numba_parallel` | the same kernels with `prange`, on all threads |
    | `torch` | PyTorch on the CPU, if it is installed |

    The shapes are those of the book's networks at a small batch, plus one small shape on which
    the plain loops finish. Times are the minimum of a few repeats after a warm-up call, so the
    one-time compilation of the Numba kernels is never counted. The numbers below come from the
    machine that last ran the notebook (see the next cell); run it on yours to get your own.
    The full suite, at batch 100 with more shapes, is `python -m bench.report`
    (report in `bench/results/`).
    """),
    code("""
    %matplotlib inline
    import os
    import platform
    import sys
    import time
    import timeit
    from contextlib import contextmanager
    from pathlib import Path

    import matplotlib.pyplot as plt
    import numba
    import numpy as np
    from IPython.display import Markdown, display

    import fastconv
    from fastconv import config
    from fastconv.models import SimpleConvNet
    from fastconv.optimizer import Adam


    @@FIND_REPO@@


    import registry  # tests/registry.py

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # then BLAS keeps its own thread count in the scaling test
        threadpool_limits = None

    @@SMALL_FLAG@@

    N = 4 if SMALL else 16             # batch of the network-sized shapes
    STEP_BATCH = 20 if SMALL else 100  # batch of the training step in the scaling test
    REPEAT = 3 if SMALL else 7         # rounds per timing (the minimum is kept)
    MIN_TIME = 0.002 if SMALL else 0.02  # seconds per repeat, at least


    def cpu_name():
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("model name"):
                        return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return platform.processor() or platform.machine()


    print(f"CPU: {cpu_name()}, {os.cpu_count()} logical cores"
          + (f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""))
    print(f"Python {platform.python_version()}, NumPy {np.__version__}, Numba {numba.__version__}, "
          f"fastconv {fastconv.__version__}")
    print(f"Numba threads: {config.get_num_threads()}, threading layer: {config.threading_layer()}")
    print("PyTorch:", registry.torch.__version__ if registry.HAS_TORCH else
          "not installed (pip install 'fastconv[torch]' adds its column)")
    print(f"{'small run (FASTCONV_NB_SMALL)' if SMALL else 'default run'}: batch {N}, "
          f"{REPEAT} repeats of at least {MIN_TIME * 1000:g} ms")
    """),
    md("""
    ## The shapes

    `small` is tiny, so that the plain Python loops finish. The others are layers of the book's
    networks at batch `N`: `simple_conv1` / `simple_pool1` are SimpleConvNet's convolution
    (30 filters of 5x5 on a 1x28x28 image) and pooling; `deep_conv2` is the second convolution
    of the chapter 8 DeepConvNet (16 filters of 3x3x16), where the matrix product dominates.
    `im2col` and `col2im` use the window of each convolution.
    """),
    code("""
    CONV_SHAPES = {
        "small": {"x": (2, 3, 10, 10), "W": (4, 3, 3, 3), "stride": 1, "pad": 1},
        "simple_conv1": {"x": (N, 1, 28, 28), "W": (30, 1, 5, 5), "stride": 1, "pad": 0},
        "deep_conv2": {"x": (N, 16, 28, 28), "W": (16, 16, 3, 3), "stride": 1, "pad": 1},
    }
    POOL_SHAPES = {
        "small": {"x": (2, 4, 10, 10), "pool": (2, 2), "stride": 2, "pad": 0},
        "simple_pool1": {"x": (N, 30, 24, 24), "pool": (2, 2), "stride": 2, "pad": 0},
    }
    OPS = ("im2col", "col2im", "conv_forward", "conv_backward", "maxpool_forward", "maxpool_backward")


    def shapes_for(op):
        return POOL_SHAPES if "pool" in op else CONV_SHAPES


    for op in OPS:
        print(f"{op:17} {registry.SIGNATURES[op]}")
    """),
    md("""
    ## Timing

    For each operation and shape, every implementation gets the same arrays; the untimed
    `prepare` step of the registry builds what a layer would already hold (for the backward
    ops: the forward pass's `col`). `time_calls` then

    1. calls each implementation once (Numba compiles its kernel or loads it from the cache,
       the memory is touched): never timed;
    2. picks for each a number of calls that takes at least `MIN_TIME`;
    3. times `REPEAT` rounds, each round running every implementation in turn, and keeps each
       one's best round. The minimum is the run least disturbed by other programs, and taking
       turns spreads a burst of background load over all implementations alike.
    """),
    code("""
    def calibrate(fn, min_time=MIN_TIME):
        \"""Warm-up call, then a number of calls of fn() that lasts at least min_time.\"""
        fn()  # JIT compilation or cache load, first touch of the memory
        number = 1
        while True:
            elapsed = timeit.timeit(fn, number=number)
            if elapsed >= min_time or number >= 100_000:
                return number, elapsed / number
            number = max(2 * number, int(number * 1.2 * min_time / max(elapsed, 1e-9)))


    def time_calls(fns, repeat=REPEAT):
        \"""Seconds per call of each function in the dict fns: the best of `repeat` rounds.\"""
        numbers, best = {}, {}
        for key, fn in fns.items():
            numbers[key], best[key] = calibrate(fn)
        for _ in range(repeat - 1):
            for key, fn in fns.items():
                best[key] = min(best[key], timeit.timeit(fn, number=numbers[key]) / numbers[key])
        return best


    def runner(impl, args):
        state = impl.prepare(*args)
        return lambda: impl.run(state)


    results = {}  # (op, shape, implementation) -> seconds per call
    start = time.perf_counter()
    for op in OPS:
        for shape, spec in shapes_for(op).items():
            args = registry.make_args(op, spec, np.float64, seed=0)
            fns = {name: runner(impl, args) for name, impl in registry.REGISTRY[op].items()
                   if impl.supports(*args)              # the book's pooling has no padding
                   and (name != "naive" or shape == "small")}  # the loops would take minutes
            for name, seconds in time_calls(fns).items():
                results[op, shape, name] = seconds
    print(f"{len(results)} timings in {time.perf_counter() - start:.0f} s")
    IMPLS = [name for name in registry.IMPL_NAMES if any(key[2] == name for key in results)]
    """),
    code("""
    def fmt(seconds):
        if seconds >= 1:
            return f"{seconds:.2f} s"
        if seconds >= 1e-3:
            return f"{seconds * 1e3:.3g} ms"
        return f"{seconds * 1e6:.3g} µs"


    lines = ["Time per call; in parentheses the speed-up over `numpy_im2col` (the book's code): "
             "×2 = twice as fast.", "",
             "| op | shape | " + " | ".join(f"`{name}`" for name in IMPLS) + " |",
             "|---|---|" + "---:|" * len(IMPLS)]
    for op in OPS:
        for shape in shapes_for(op):
            base = results.get((op, shape, "numpy_im2col"))
            cells = []
            for name in IMPLS:
                t = results.get((op, shape, name))
                if t is None:
                    cells.append("–")
                else:
                    cells.append(fmt(t) + (f" (×{base / t:.3g})" if base else ""))
            lines.append(f"| {op} | {shape} | " + " | ".join(cells) + " |")
    display(Markdown("\\n".join(lines)))
    """),
    md("""
    ## Bar charts

    One panel per operation, one group of bars per shape, log scale (each grid line is ×10):
    lower is faster. Missing bars: `naive` does not run on the network shapes.
    """),
    code("""
    COLORS = dict(zip(registry.IMPL_NAMES, ["tab:gray", "tab:blue", "tab:cyan", "tab:orange",
                                             "tab:red", "tab:purple"]))

    fig, axes = plt.subplots(2, 3, figsize=(14, 8))
    for ax, op in zip(axes.flat, OPS):
        shapes = list(shapes_for(op))
        width = 0.8 / len(IMPLS)
        for k, name in enumerate(IMPLS):
            xs = [j + (k - (len(IMPLS) - 1) / 2) * width for j, s in enumerate(shapes)
                  if (op, s, name) in results]
            ys = [results[op, s, name] for s in shapes if (op, s, name) in results]
            ax.bar(xs, ys, width, color=COLORS[name], label=name)
        ax.set_yscale("log")
        ax.set_xticks(range(len(shapes)), shapes)
        ax.set_title(op)
        ax.set_ylabel("seconds per call (log)")
        ax.grid(axis="y", which="major", alpha=0.4)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(IMPLS), frameon=False, fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    plt.show()
    """),
    md("""
    The same numbers as speed-ups over the book's NumPy code on the network-sized shapes
    (above 1: faster than the book's code; log scale).
    """),
    code("""
    cases = [(op, shape) for op in OPS for shape in shapes_for(op) if shape != "small"]
    others = [name for name in IMPLS if name not in ("naive", "numpy_im2col")]

    fig, ax = plt.subplots(figsize=(15, 4.8))
    width = 0.8 / len(others)
    for k, name in enumerate(others):
        xs, ys = [], []
        for j, (op, shape) in enumerate(cases):
            base, t = results.get((op, shape, "numpy_im2col")), results.get((op, shape, name))
            if base and t:
                xs.append(j + (k - (len(others) - 1) / 2) * width)
                ys.append(base / t)
        ax.bar(xs, ys, width, color=COLORS[name], label=name)
    ax.axhline(1, color="black", linewidth=1)
    ax.set_yscale("log")
    ax.set_xticks(range(len(cases)), [f"{op}\\n{shape}" for op, shape in cases], fontsize=8)
    ax.set_ylabel("speed-up over numpy_im2col (log)")
    ax.grid(axis="y", which="both", alpha=0.3)
    ax.legend(ncol=len(others), loc="upper left")
    ax.set_title(f"speed-up over the book's NumPy code, batch {N}")
    fig.tight_layout()
    plt.show()
    """),
    md("""
    ## Thread scaling

    `numba_parallel` (and PyTorch) again, now on 1, 2, 4, ... threads up to the number of cores
    Numba found (`fastconv.config.set_num_threads`; for PyTorch `torch.set_num_threads`; with
    `threadpoolctl` installed, the BLAS library behind NumPy's matrix products is limited too).
    The last case is a whole training step of SimpleConvNet (gradient and Adam update) at
    batch `STEP_BATCH`.

    On a 2-core machine 2 threads is the maximum, and the ideal speed-up is ×2; other programs
    running at the same time take cores away and lower it. Small operations gain little or
    nothing: starting and joining the threads costs a few microseconds.
    """),
    code("""
    THREADS = [n for n in (1, 2, 4, 8, 16) if n <= numba.config.NUMBA_NUM_THREADS]
    if numba.config.NUMBA_NUM_THREADS not in THREADS and numba.config.NUMBA_NUM_THREADS < 16:
        THREADS.append(numba.config.NUMBA_NUM_THREADS)
    print("thread counts:", THREADS, "| BLAS threads limited too:", threadpool_limits is not None)


    @contextmanager
    def threads(n):
        \"""Run the block with n threads in fastconv's kernels, in torch and (if possible) in BLAS.\"""
        before = config.get_num_threads()
        registry.set_num_threads(n)
        try:
            if threadpool_limits is None:
                yield
            else:
                with threadpool_limits(limits=n, user_api="blas"):
                    yield
        finally:
            registry.set_num_threads(before)


    SCALING = [("im2col", "deep_conv2"), ("col2im", "deep_conv2"),
               ("conv_forward", "simple_conv1"), ("conv_forward", "deep_conv2"),
               ("conv_backward", "simple_conv1"), ("conv_backward", "deep_conv2"),
               ("maxpool_forward", "simple_pool1"), ("maxpool_backward", "simple_pool1")]
    SCALING_IMPLS = [name for name in ("numba_parallel", "torch") if name in IMPLS]

    # a training step of SimpleConvNet: gradient (forward + backward) and Adam's update
    data_rng = np.random.default_rng(0)
    x_batch = data_rng.random((STEP_BATCH, 1, 28, 28))
    t_batch = data_rng.integers(0, 10, STEP_BATCH)
    np.random.seed(0)
    network, optimizer = SimpleConvNet(), Adam(lr=0.001)


    def train_step():
        optimizer.update(network.params, network.gradient(x_batch, t_batch))


    scaling = {}  # (case, implementation, threads) -> seconds
    start = time.perf_counter()
    cases = [(f"{op}\\n{shape}", registry.make_args(op, shapes_for(op)[shape], np.float64, seed=0),
              {name: registry.REGISTRY[op][name] for name in SCALING_IMPLS}) for op, shape in SCALING]
    for case, args, impls in cases + [("train step\\nSimpleConvNet", None, None)]:
        fns, numbers = {}, {}
        for n in THREADS:  # calibrate at every thread count
            with threads(n):
                if args is None:
                    fns["numba_parallel", n] = train_step
                else:
                    for name, impl in impls.items():
                        fns[name, n] = runner(impl, args)
                for key in [key for key in fns if key[1] == n]:
                    numbers[key], scaling[(case,) + key] = calibrate(fns[key])
        for _ in range(REPEAT - 1):  # rounds over the thread counts, as time_calls does
            for n in THREADS:
                with threads(n):
                    for key in [key for key in fns if key[1] == n]:
                        seconds = timeit.timeit(fns[key], number=numbers[key]) / numbers[key]
                        scaling[(case,) + key] = min(scaling[(case,) + key], seconds)
    print(f"{len(scaling)} timings in {time.perf_counter() - start:.0f} s")

    lines = ["| case | implementation | " + " | ".join(f"{n} thread{'s' * (n > 1)}" for n in THREADS)
             + " |", "|---|---|" + "---:|" * len(THREADS)]
    for case, name in dict.fromkeys((c, m) for c, m, _ in scaling):
        t1 = scaling[case, name, 1]
        lines.append(f"| {case.replace(chr(10), ' ')} | {name} | " + " | ".join(
            fmt(scaling[case, name, n]) + (f" (×{t1 / scaling[case, name, n]:.2f})" if n > 1 else "")
            for n in THREADS) + " |")
    display(Markdown("\\n".join(lines)))
    """),
    code("""
    cases = list(dict.fromkeys(case for case, _, _ in scaling))
    bars = [(name, n) for name in SCALING_IMPLS for n in THREADS[1:]]
    fig, ax = plt.subplots(figsize=(14, 4.8))
    if not bars:
        ax.text(0.5, 0.5, "one core only: nothing to scale", ha="center", transform=ax.transAxes)
    width = 0.8 / max(len(bars), 1)
    for k, (name, n) in enumerate(bars):
        xs, ys = [], []
        for j, case in enumerate(cases):
            if (case, name, n) in scaling:
                xs.append(j + (k - (len(bars) - 1) / 2) * width)
                ys.append(scaling[case, name, 1] / scaling[case, name, n])
        ax.bar(xs, ys, width, color=COLORS[name], alpha=0.5 + 0.5 * n / THREADS[-1],
               label=f"{name}, {n} threads")
    for n in THREADS[1:]:
        ax.axhline(n, color="gray", linestyle="--", linewidth=1, label=f"ideal for {n} threads")
    ax.axhline(1, color="black", linewidth=1)
    ax.set_xticks(range(len(cases)), cases, fontsize=9)
    ax.set_ylim(0, max(THREADS) * 1.25)
    ax.set_ylabel("speed-up over 1 thread")
    ax.legend(loc="upper left", ncol=2 * len(bars))
    ax.set_title(f"thread scaling on {os.cpu_count()} cores (batch {N}; train step: batch {STEP_BATCH})")
    fig.tight_layout()
    plt.show()
    """),
    md("""
    ## Reading the results

    The cell below sums up the first table: the fastest implementation of each case, and how
    many times faster than the book's NumPy code fastconv's faster variant (serial or parallel)
    is.
    """),
    code("""
    for op in OPS:
        for shape in shapes_for(op):
            timed = {name: results[op, shape, name] for name in IMPLS if (op, shape, name) in results}
            fastest = min(timed, key=timed.get)
            fastconv_best = min(timed["numba_serial"], timed["numba_parallel"])
            print(f"{op:17} {shape:13} fastest: {fastest:15} fastconv vs the book's NumPy: "
                  f"×{timed['numpy_im2col'] / fastconv_best:.3g}")
    slower = [results[op, "small", "numpy_im2col"] / results[op, "small", "naive"] for op in OPS]
    print(f"\\nthe plain loops: {1 / max(slower):.0f} to {1 / min(slower):.0f} times slower than the "
          f"book's NumPy code on the small shape")
    """),
    md("""
    What to look for:

    * The plain Python loops (`naive`) are far slower than everything else even on the small
      shape: this is why the book uses im2col.
    * Max pooling is where compiled loops help most: the book's NumPy code first copies every
      window into an im2col matrix and then searches it, the kernel finds the maximum and its
      position in one pass over the input.
    * In a convolution much of the time goes into one large matrix product, which every
      implementation hands to an optimised library (BLAS, or PyTorch's own); the gaps are
      smaller there and change with the shape, the batch size and the number of threads.
    * On the small shape the parallel variant loses to the serial one: the work is shorter than
      waking up the threads.
    * Multi-threaded code suffers most when other programs share the cores: BLAS and PyTorch
      (OpenMP) threads wait for each other, which shows as poor 2-thread numbers on a busy
      2-core machine (see the load average at the top).

    Your numbers will differ with your CPU, the number of cores and what else is running.
    """),
]

NOTEBOOKS = {
    "01_quickstart": QUICKSTART,
    "02_kernels": KERNELS,
    "03_benchmarks": BENCHMARKS,
}


def build(name):
    import nbformat
    from nbformat import v4

    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python",
                                 "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    for kind, source in NOTEBOOKS[name]:
        cell = v4.new_markdown_cell(source) if kind == "markdown" else v4.new_code_cell(source)
        nb.cells.append(cell)
    for i, cell in enumerate(nb.cells):  # stable ids: a rebuild gives a small diff
        cell["id"] = f"{name[:2]}-{i:02d}"
    nbformat.validate(nb)
    return nb


def execute(nb, name):
    from nbclient import NotebookClient

    start = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(HERE)}}).execute()
    print(f"{name}: executed in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return nb


def main(argv=None):
    import nbformat

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--execute", action="store_true", help="run and store outputs")
    parser.add_argument("names", nargs="*", help="notebooks to execute (default: all)")
    args = parser.parse_args(argv)
    for name in args.names:
        if name not in NOTEBOOKS:
            parser.error(f"unknown notebook {name!r}; choose from {', '.join(NOTEBOOKS)}")
    for name in NOTEBOOKS:
        path = HERE / f"{name}.ipynb"
        run = args.execute and (not args.names or name in args.names)
        if not run and path.exists() and args.execute:
            continue  # keep the stored outputs of notebooks not asked for
        nb = build(name)
        if run:
            # inline plots even when the caller's MPLBACKEND says Agg (ipykernel honours it)
            os.environ.pop("MPLBACKEND", None)
            execute(nb, name)
        nbformat.write(nb, path)
        print(f"wrote {path.relative_to(HERE.parent)}", file=sys.stderr)


if __name__ == "__main__":
    main()
