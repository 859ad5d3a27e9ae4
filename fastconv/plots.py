"""PNG figures of ``fastconv train`` / ``fastconv evaluate`` (matplotlib, no pyplot).

Figures are built with :class:`matplotlib.figure.Figure` and the Agg canvas, so nothing here
touches pyplot's global backend or opens a window.
"""
import numpy as np

__all__ = ["plot_accuracy", "plot_loss", "plot_filters", "plot_confusion"]


def _figure(figsize):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # matplotlib is an optional dependency ([plots])
        raise ImportError("plots need matplotlib: pip install 'fastconv[plots]'") from exc
    fig = Figure(figsize=figsize, dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path):
    fig.savefig(path)


def plot_accuracy(train_acc_list, test_acc_list, path, title=None, epochs=None):
    """Train/test accuracy per epoch: the book's ``train_convnet.py`` figure (y from 0 to 1)
    and, beside it, the same curves zoomed to their range, where the last epochs differ.
    ``epochs``: the x of each point (default the book's axis, 0 .. len - 1)."""
    from matplotlib.ticker import MaxNLocator
    if len(train_acc_list) != len(test_acc_list):
        raise ValueError(f"plot_accuracy: {len(train_acc_list)} train but "
                         f"{len(test_acc_list)} test accuracies")
    fig = _figure((11, 4.4))
    x = np.arange(len(train_acc_list)) if epochs is None else np.asarray(epochs)
    if len(x) != len(train_acc_list):
        raise ValueError(f"plot_accuracy: {len(x)} epochs for {len(train_acc_list)} points")
    every = 2 if len(x) > 10 else 1  # the book marks every second of its 20 points
    for k, ax in enumerate(fig.subplots(1, 2)):
        ax.plot(x, train_acc_list, marker='o', label='train', markevery=every)
        ax.plot(x, test_acc_list, marker='s', label='test', markevery=every)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epochs")
        ax.set_ylabel("accuracy")
        ax.grid(alpha=0.3)
        ax.legend(loc='lower right')
        if k == 0:
            ax.set_ylim(0, 1.0)
            ax.set_title("as in the book (y from 0 to 1)", fontsize=10)
        else:
            ax.margins(y=0.1)
            ax.set_title("zoomed", fontsize=10)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)


def _smooth(values):
    """The book's ``smooth_curve`` where the series is long enough for its 11-tap window."""
    from .util import smooth_curve
    if len(values) < 22:
        return None
    return smooth_curve(np.asarray(values, dtype=np.float64))


def plot_loss(train_loss_list, path, iter_per_epoch=None, title=None):
    """Training loss per iteration (raw and smoothed as in the book's ch06 figures)."""
    fig = _figure((6.4, 4.8))
    ax = fig.add_subplot()
    loss = np.asarray(train_loss_list, dtype=np.float64)
    x = np.arange(len(loss))
    smooth = _smooth(loss)
    ax.plot(x, loss, color='tab:blue', alpha=0.3 if smooth is not None else 1.0,
            linewidth=0.8, label='mini-batch loss')
    if smooth is not None:
        ax.plot(x, smooth, color='tab:blue', linewidth=1.6, label='smoothed')
    ax.set_xlabel("iterations")
    ax.set_ylabel("loss")
    if len(loss):
        ax.set_ylim(0, max(float(loss.max()) * 1.05, 1e-3))
    if iter_per_epoch and len(loss) > iter_per_epoch:
        # a top axis in epochs, since the accuracy figure counts epochs
        top = ax.secondary_xaxis('top', functions=(lambda i: i / iter_per_epoch,
                                                   lambda e: e * iter_per_epoch))
        top.set_xlabel("epochs")
    ax.grid(alpha=0.3)
    ax.legend(loc='upper right')
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)


def _filter_grid(fig, gs, W, label):
    """One block of filters as the book's ``visualize_filter.py`` shows them (gray_r)."""
    FN = W.shape[0]
    nx = min(FN, 8)  # the book's filter_show(filters, nx=8)
    ny = int(np.ceil(FN / nx))
    sub = gs.subgridspec(ny + 1, nx, height_ratios=[0.35] + [1] * ny, hspace=0.1, wspace=0.1)
    head = fig.add_subplot(sub[0, :])
    head.axis('off')
    head.text(0.5, 0.2, label, ha='center', va='center', fontsize=12)
    for i in range(FN):
        ax = fig.add_subplot(sub[1 + i // nx, i % nx])
        ax.set_xticks([])
        ax.set_yticks([])
        ax.imshow(W[i, 0], cmap='gray_r', interpolation='nearest')


def plot_filters(W_before, W_after, path):
    """First-layer filters (input channel 0) before and after training, side by side."""
    rows = int(np.ceil(W_before.shape[0] / min(W_before.shape[0], 8)))
    fig = _figure((12, 0.8 + 0.75 * rows))  # square cells, about 0.7 inch each
    gs = fig.add_gridspec(1, 2, wspace=0.15, left=0.02, right=0.98, top=0.97, bottom=0.03)
    _filter_grid(fig, gs[0], np.asarray(W_before), f"before training ({W_before.shape[0]} "
                 f"filters {W_before.shape[2]}x{W_before.shape[3]})")
    _filter_grid(fig, gs[1], np.asarray(W_after), "after training")
    _save(fig, path)


def plot_confusion(cm, path, title=None):
    """Confusion matrix (rows: true label, columns: predicted) with counts in the cells."""
    cm = np.asarray(cm)
    n = cm.shape[0]
    fig = _figure((7.2, 6.4))
    ax = fig.add_subplot()
    # colour by row share so the off-diagonal errors stay visible next to the large diagonal
    share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    im = ax.imshow(share, cmap='Blues', vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha='center', va='center', fontsize=8,
                        color='white' if share[i, j] > 0.5 else 'black')
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    _save(fig, path)
