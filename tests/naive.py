"""Readable twins of every kernel and layer: the book's NumPy algorithms and plain loops.

These are the independent references of the parity tests, and the baselines of bench/.
``book_*`` follow the book's ``common/util.py`` / ``common/layers.py`` line by line;
``loop_*`` are plain Python loops over every index (slow: small shapes only).
"""
import numpy as np


# --------------------------------------------------------------------- the book's NumPy ----
def book_im2col(input_data, filter_h, filter_w, stride=1, pad=0):
    N, C, H, W = input_data.shape
    out_h = (H + 2 * pad - filter_h) // stride + 1
    out_w = (W + 2 * pad - filter_w) // stride + 1
    img = np.pad(input_data, [(0, 0), (0, 0), (pad, pad), (pad, pad)], "constant")
    col = np.zeros((N, C, filter_h, filter_w, out_h, out_w))
    for y in range(filter_h):
        y_max = y + stride * out_h
        for x in range(filter_w):
            x_max = x + stride * out_w
            col[:, :, y, x, :, :] = img[:, :, y:y_max:stride, x:x_max:stride]
    # sizes written out where the book has -1, so that an empty batch reshapes too
    return col.transpose(0, 4, 5, 1, 2, 3).reshape(N * out_h * out_w, C * filter_h * filter_w)


def book_col2im(col, input_shape, filter_h, filter_w, stride=1, pad=0):
    N, C, H, W = input_shape
    out_h = (H + 2 * pad - filter_h) // stride + 1
    out_w = (W + 2 * pad - filter_w) // stride + 1
    col = col.reshape(N, out_h, out_w, C, filter_h, filter_w).transpose(0, 3, 4, 5, 1, 2)
    img = np.zeros((N, C, H + 2 * pad + stride - 1, W + 2 * pad + stride - 1))
    for y in range(filter_h):
        y_max = y + stride * out_h
        for x in range(filter_w):
            x_max = x + stride * out_w
            img[:, :, y:y_max:stride, x:x_max:stride] += col[:, :, y, x, :, :]
    return img[:, :, pad:H + pad, pad:W + pad]


def book_conv_forward(x, W, b, stride=1, pad=0):
    """Returns (out, col, col_W) as the book's Convolution.forward computes them."""
    FN, C, FH, FW = W.shape
    N, C, H, Wd = x.shape
    out_h = 1 + int((H + 2 * pad - FH) / stride)
    out_w = 1 + int((Wd + 2 * pad - FW) / stride)
    col = book_im2col(x, FH, FW, stride, pad)
    col_W = W.reshape(FN, -1).T
    out = np.dot(col, col_W) + b
    return out.reshape(N, out_h, out_w, FN).transpose(0, 3, 1, 2), col, col_W


def book_conv_backward(dout, x, W, col, col_W, stride=1, pad=0):
    """Returns (dx, dW, db) as the book's Convolution.backward."""
    FN, C, FH, FW = W.shape
    dout = dout.transpose(0, 2, 3, 1).reshape(-1, FN)
    db = np.sum(dout, axis=0)
    dW = np.dot(col.T, dout).transpose(1, 0).reshape(FN, C, FH, FW)
    dcol = np.dot(dout, col_W.T)
    return book_col2im(dcol, x.shape, FH, FW, stride, pad), dW, db


def book_pool_forward(x, pool_h, pool_w, stride=2, pad=0):
    """Returns (out, arg_max) as the book's Pooling.forward (pad must be 0: the book's
    out_h ignores pad)."""
    N, C, H, W = x.shape
    out_h = int(1 + (H - pool_h) / stride)
    out_w = int(1 + (W - pool_w) / stride)
    col = book_im2col(x, pool_h, pool_w, stride, pad).reshape(-1, pool_h * pool_w)
    arg_max = np.argmax(col, axis=1)
    out = np.max(col, axis=1).reshape(N, out_h, out_w, C).transpose(0, 3, 1, 2)
    return out, arg_max


def book_pool_backward(dout, arg_max, x_shape, pool_h, pool_w, stride=2, pad=0):
    dout = dout.transpose(0, 2, 3, 1)
    pool_size = pool_h * pool_w
    dmax = np.zeros((dout.size, pool_size))
    dmax[np.arange(arg_max.size), arg_max.flatten()] = dout.flatten()
    dmax = dmax.reshape(dout.shape + (pool_size,))
    dcol = dmax.reshape(dout.shape[0] * dout.shape[1] * dout.shape[2], dout.shape[3] * pool_size)
    return book_col2im(dcol, x_shape, pool_h, pool_w, stride, pad)


def book_relu_forward(x):
    mask = x <= 0
    out = x.copy()
    out[mask] = 0
    return out, mask


def book_relu_backward(dout, mask):
    dout[mask] = 0
    return dout


# ------------------------------------------------------------------------- plain loops ----
def _out(H, W, FH, FW, stride, pad):
    return (H + 2 * pad - FH) // stride + 1, (W + 2 * pad - FW) // stride + 1


def loop_conv_forward(x, W, b, stride=1, pad=0):
    N, C, H, Wd = x.shape
    FN, _, FH, FW = W.shape
    out_h, out_w = _out(H, Wd, FH, FW, stride, pad)
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0), (pad, pad), (pad, pad)])
    out = np.zeros((N, FN, out_h, out_w))
    for n in range(N):
        for f in range(FN):
            for oh in range(out_h):
                for ow in range(out_w):
                    s = 0.0
                    for c in range(C):
                        for fh in range(FH):
                            for fw in range(FW):
                                s += W[f, c, fh, fw] * xp[n, c, oh * stride + fh, ow * stride + fw]
                    out[n, f, oh, ow] = s + b[f]
    return out


def loop_conv_backward(dout, x, W, stride=1, pad=0):
    N, C, H, Wd = x.shape
    FN, _, FH, FW = W.shape
    out_h, out_w = dout.shape[2:]
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0), (pad, pad), (pad, pad)])
    dxp = np.zeros_like(xp)
    dW = np.zeros(W.shape)
    db = np.zeros(FN)
    for n in range(N):
        for f in range(FN):
            for oh in range(out_h):
                for ow in range(out_w):
                    g = dout[n, f, oh, ow]
                    db[f] += g
                    for c in range(C):
                        for fh in range(FH):
                            for fw in range(FW):
                                ih, iw = oh * stride + fh, ow * stride + fw
                                dW[f, c, fh, fw] += g * xp[n, c, ih, iw]
                                dxp[n, c, ih, iw] += g * W[f, c, fh, fw]
    return dxp[:, :, pad:pad + H, pad:pad + Wd], dW, db


def _windows(H, W, PH, PW, stride, pad, oh, ow):
    for fh in range(PH):
        for fw in range(PW):
            ih, iw = oh * stride + fh - pad, ow * stride + fw - pad
            yield fh * PW + fw, ih, iw, (0 <= ih < H and 0 <= iw < W)


def loop_maxpool_forward(x, PH, PW, stride=2, pad=0):
    """Max over the real cells of each window (padding never wins), first maximum on ties,
    first NaN if any; arg_max in the book's (n, oh, ow, c) order."""
    N, C, H, W = x.shape
    out_h, out_w = _out(H, W, PH, PW, stride, pad)
    out = np.zeros((N, C, out_h, out_w))
    arg_max = np.zeros(N * out_h * out_w * C, dtype=np.intp)
    for n in range(N):
        for c in range(C):
            for oh in range(out_h):
                for ow in range(out_w):
                    vals = [(k, float(x[n, c, ih, iw]))
                            for k, ih, iw, ok in _windows(H, W, PH, PW, stride, pad, oh, ow) if ok]
                    nans = [k for k, v in vals if np.isnan(v)]
                    if nans:
                        k_best, best = nans[0], np.nan
                    else:
                        best = max(v for _, v in vals)
                        k_best = next(k for k, v in vals if v == best)
                    out[n, c, oh, ow] = best
                    arg_max[((n * out_h + oh) * out_w + ow) * C + c] = k_best
    return out, arg_max


def loop_maxpool_backward(dout, arg_max, x_shape, PH, PW, stride=2, pad=0):
    N, C, H, W = x_shape
    out_h, out_w = dout.shape[2:]
    dx = np.zeros(x_shape)
    for n in range(N):
        for c in range(C):
            for oh in range(out_h):
                for ow in range(out_w):
                    k = arg_max[((n * out_h + oh) * out_w + ow) * C + c]
                    ih, iw = oh * stride + k // PW - pad, ow * stride + k % PW - pad
                    dx[n, c, ih, iw] += dout[n, c, oh, ow]
    return dx


def loop_avgpool_forward(x, PH, PW, stride=2, pad=0):
    N, C, H, W = x.shape
    out_h, out_w = _out(H, W, PH, PW, stride, pad)
    out = np.zeros((N, C, out_h, out_w))
    for n in range(N):
        for c in range(C):
            for oh in range(out_h):
                for ow in range(out_w):
                    s = sum(float(x[n, c, ih, iw])
                            for _, ih, iw, ok in _windows(H, W, PH, PW, stride, pad, oh, ow) if ok)
                    out[n, c, oh, ow] = s / (PH * PW)
    return out


def loop_avgpool_backward(dout, x_shape, PH, PW, stride=2, pad=0):
    N, C, H, W = x_shape
    out_h, out_w = dout.shape[2:]
    dx = np.zeros(x_shape)
    for n in range(N):
        for c in range(C):
            for oh in range(out_h):
                for ow in range(out_w):
                    for _, ih, iw, ok in _windows(H, W, PH, PW, stride, pad, oh, ow):
                        if ok:
                            dx[n, c, ih, iw] += dout[n, c, oh, ow] / (PH * PW)
    return dx


def loop_im2col(x, FH, FW, stride=1, pad=0):
    N, C, H, W = x.shape
    out_h, out_w = _out(H, W, FH, FW, stride, pad)
    col = np.zeros((N * out_h * out_w, C * FH * FW))
    for n in range(N):
        for oh in range(out_h):
            for ow in range(out_w):
                for c in range(C):
                    for k, ih, iw, ok in _windows(H, W, FH, FW, stride, pad, oh, ow):
                        if ok:
                            col[(n * out_h + oh) * out_w + ow, c * FH * FW + k] = x[n, c, ih, iw]
    return col


def loop_col2im(col, x_shape, FH, FW, stride=1, pad=0):
    N, C, H, W = x_shape
    out_h, out_w = _out(H, W, FH, FW, stride, pad)
    img = np.zeros(x_shape)
    for n in range(N):
        for oh in range(out_h):
            for ow in range(out_w):
                for c in range(C):
                    for k, ih, iw, ok in _windows(H, W, FH, FW, stride, pad, oh, ow):
                        if ok:
                            img[n, c, ih, iw] += col[(n * out_h + oh) * out_w + ow, c * FH * FW + k]
    return img


class BookAdam:
    """The book's ``common/optimizer.py`` Adam, line for line (NumPy passes per array)."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        self.lr, self.beta1, self.beta2 = lr, beta1, beta2
        self.iter = 0
        self.m = self.v = None

    def update(self, params, grads):
        if self.m is None:
            self.m = {key: np.zeros_like(val) for key, val in params.items()}
            self.v = {key: np.zeros_like(val) for key, val in params.items()}
        self.iter += 1
        lr_t = self.lr * np.sqrt(1.0 - self.beta2 ** self.iter) / (1.0 - self.beta1 ** self.iter)
        for key in params.keys():
            self.m[key] += (1 - self.beta1) * (grads[key] - self.m[key])
            self.v[key] += (1 - self.beta2) * (grads[key] ** 2 - self.v[key])
            params[key] -= lr_t * self.m[key] / (np.sqrt(self.v[key]) + 1e-7)


# ------------------------------------------------------------- recurrent layer (RNN) ----
# h[t] = f(x[t] @ U.T + h[t-1] @ W.T), h[-1] = h0; f's slope is written with its output h.
import math  # noqa: E402  (with the only section that needs it)

def _rnn_activate(v, activation):
    if activation == "tanh":
        return math.tanh(v)
    if activation == "ReLU":
        return v if v > 0 else v * 0
    if activation == "sigmoid":
        return 1 / (1 + math.exp(-v))
    return v


def _rnn_slope(h, activation):
    if activation == "tanh":
        return 1 - h * h
    if activation == "ReLU":
        return 1.0 if h > 0 else 0.0
    if activation == "sigmoid":
        return h * (1 - h)
    return 1.0


def loop_rnn_forward(x, U, W, h0, activation="tanh"):
    """Plain loops, each sum in the kernel's order: the n input terms, then the state terms."""
    T, n = x.shape
    units = U.shape[0]
    h = np.zeros((T, units), dtype=x.dtype)
    prev = h0
    for t in range(T):
        for i in range(units):
            s = 0.0
            for k in range(n):
                s += x[t, k] * U[i, k]
            for j in range(units):
                s += prev[j] * W[i, j]
            h[t, i] = _rnn_activate(s, activation)
        prev = h[t]
    return h


def loop_rnn_backward(x, U, W, h0, h, dout, activation="tanh"):
    """BPTT in plain loops; returns (dx, dU, dW). Sums over time run from t = 0 up."""
    T, n = x.shape
    units = U.shape[0]
    delta = np.zeros((T, units), dtype=x.dtype)
    carry = np.zeros(units, dtype=x.dtype)
    for t in range(T - 1, -1, -1):
        for i in range(units):
            delta[t, i] = (dout[t, i] + carry[i]) * _rnn_slope(h[t, i], activation)
        for j in range(units):
            s = 0.0
            for i in range(units):
                s += delta[t, i] * W[i, j]
            carry[j] = s
    dx = np.zeros((T, n), dtype=x.dtype)
    for t in range(T):
        for k in range(n):
            s = 0.0
            for i in range(units):
                s += delta[t, i] * U[i, k]
            dx[t, k] = s
    prev = np.vstack([h0[None, :], h[:-1]])  # the state each step started from
    dU = np.zeros(U.shape, dtype=x.dtype)
    dW = np.zeros(W.shape, dtype=x.dtype)
    for i in range(units):
        for k in range(n):
            s = 0.0
            for t in range(T):
                s += delta[t, i] * x[t, k]
            dU[i, k] = s
        for j in range(units):
            s = 0.0
            for t in range(T):
                s += delta[t, i] * prev[t, j]
            dW[i, j] = s
    return dx, dU, dW


_NUMPY_RNN_ACT = {"tanh": (np.tanh, lambda h: 1 - h * h),
                  "ReLU": (lambda z: np.maximum(z, 0), lambda h: (h > 0).astype(h.dtype)),
                  "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda h: h * (1 - h)),
                  "linear": (lambda z: z, np.ones_like)}


def numpy_rnn_forward(x, U, W, h0, activation="tanh"):
    """A plain NumPy time loop (one matrix-vector product per step): the speed baseline."""
    f = _NUMPY_RNN_ACT[activation][0]
    xu = x @ U.T  # the input terms of every step at once
    h = np.empty_like(xu)
    prev = h0
    for t in range(x.shape[0]):
        prev = h[t] = f(xu[t] + W @ prev)
    return h


def numpy_rnn_backward(x, U, W, h0, h, dout, activation="tanh"):
    """NumPy BPTT; returns (dx, dU, dW)."""
    slope = _NUMPY_RNN_ACT[activation][1](h)
    delta = np.empty_like(h)
    carry = np.zeros_like(h0)
    for t in range(x.shape[0] - 1, -1, -1):
        delta[t] = (dout[t] + carry) * slope[t]
        carry = delta[t] @ W
    prev = np.vstack([h0[None, :], h[:-1]])
    return delta @ U, delta.T @ x, delta.T @ prev


# ------------------------------------------------------- the other layers, written out ----
def book_affine_forward(x, W, b):
    return x.reshape(x.shape[0], -1) @ W + b


def book_affine_backward(dout, x, W):
    """Returns (dx, dW, db)."""
    return (dout @ W.T).reshape(x.shape), x.reshape(x.shape[0], -1).T @ dout, dout.sum(axis=0)


def book_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def book_softmax_loss(x, t):
    """Softmax cross entropy with the book's +1e-7 and index labels: returns (loss, dx)."""
    e = np.exp(x - x.max(axis=1, keepdims=True))
    y = e / e.sum(axis=1, keepdims=True)
    n = len(x)
    loss = -np.sum(np.log(y[np.arange(n), t] + 1e-7)) / n
    dx = y.copy()
    dx[np.arange(n), t] -= 1
    return loss, dx / n


def batchnorm_forward(x, gamma, beta, eps=10e-7):
    """Per-activation batch normalisation of (N, ...) input: returns (out, mean, var)."""
    flat = x.reshape(x.shape[0], -1)
    mean, var = flat.mean(axis=0), flat.var(axis=0)
    out = gamma * (flat - mean) / np.sqrt(var + eps) + beta
    return out.reshape(x.shape), mean, var


def batchnorm_backward(dout, x, gamma, eps=10e-7):
    """The closed form dx = gamma / std * (dout - mean(dout) - xn * mean(dout * xn)), not the
    book's step-by-step graph: returns (dx, dgamma, dbeta)."""
    flat = x.reshape(x.shape[0], -1)
    g = dout.reshape(flat.shape)
    std = np.sqrt(flat.var(axis=0) + eps)
    xn = (flat - flat.mean(axis=0)) / std
    dx = gamma / std * (g - g.mean(axis=0) - xn * (g * xn).mean(axis=0))
    return dx.reshape(x.shape), (g * xn).sum(axis=0), g.sum(axis=0)


# ---------------------------------------------------------------- the book's networks ----
def simple_convnet_grads(params, x, t, trace=None):
    """Loss and gradients of SimpleConvNet (conv - relu - pool - affine - relu - affine -
    softmax) with the book's NumPy algorithms only: returns (loss, grads). ``trace``, a dict
    of two lists, gets the ReLUs' inputs ("relu") and the poolings' ("pool"), and the scores
    before the softmax ("scores")."""
    trace = {"relu": [], "pool": []} if trace is None else trace
    W1, b1, W2, b2, W3, b3 = (params[k] for k in ('W1', 'b1', 'W2', 'b2', 'W3', 'b3'))
    c, col, col_W = book_conv_forward(x, W1, b1)
    r = np.maximum(c, 0)
    p, arg_max = book_pool_forward(r, 2, 2, 2)
    h = book_affine_forward(p, W2, b2)
    a = np.maximum(h, 0)
    trace["relu"] += [c, h]
    trace["pool"].append(r)
    trace["scores"] = book_affine_forward(a, W3, b3)
    loss, ds = book_softmax_loss(trace["scores"], t)
    g = {}
    da, g['W3'], g['b3'] = book_affine_backward(ds, a, W3)
    dp, g['W2'], g['b2'] = book_affine_backward(da * (h > 0), p, W2)
    dr = book_pool_backward(dp, arg_max, r.shape, 2, 2, 2)
    _, g['W1'], g['b1'] = book_conv_backward(dr * (c > 0), x, W1, col, col_W)
    return loss, g


def deep_convnet_grads(params, x, t, pads, masks, trace=None):
    """Loss and gradients of DeepConvNet with the book's NumPy algorithms: six conv - relu
    (a 2x2 pool after every second), affine - relu - dropout - affine - dropout - softmax.
    ``pads``: the six convolutions' pads; ``masks``: the two dropout masks, as drawn (test
    time: arrays of 1 - dropout_ratio); ``trace`` as for :func:`simple_convnet_grads`."""
    trace = {"relu": [], "pool": []} if trace is None else trace
    acts, h = [], x
    for i, pad in enumerate(pads, start=1):
        c, col, col_W = book_conv_forward(h, params['W%d' % i], params['b%d' % i], 1, pad)
        r = np.maximum(c, 0)
        trace["relu"].append(c)
        acts.append((h, c, col, col_W, pad))
        h = r
        if i % 2 == 0:
            p, arg_max = book_pool_forward(r, 2, 2, 2)
            acts.append((r, arg_max))
            trace["pool"].append(r)
            h = p
    h7 = book_affine_forward(h, params['W7'], params['b7'])
    trace["relu"].append(h7)
    a7 = np.maximum(h7, 0) * masks[0]
    h8 = book_affine_forward(a7, params['W8'], params['b8']) * masks[1]
    trace["scores"] = h8
    loss, d = book_softmax_loss(h8, t)
    g = {}
    d, g['W8'], g['b8'] = book_affine_backward(d * masks[1], a7, params['W8'])
    d, g['W7'], g['b7'] = book_affine_backward(d * masks[0] * (h7 > 0), h, params['W7'])
    i = len(pads)
    for act in reversed(acts):
        if len(act) == 2:  # a pooling
            d = book_pool_backward(d, act[1], act[0].shape, 2, 2, 2)
            continue
        h_in, c, col, col_W, pad = act
        d, g['W%d' % i], g['b%d' % i] = book_conv_backward(d * (c > 0), h_in, params['W%d' % i],
                                                           col, col_W, 1, pad)
        i -= 1
    return loss, g


# ===================================================================================== #
# The book's fully connected networks (common/multi_layer_net_extend.py) in plain NumPy #
# ===================================================================================== #
class BookMLP:
    """The book's MultiLayerNetExtend over a given ``params`` dict, written as straight NumPy
    passes (no layer objects): Affine - [BatchNorm] - relu/sigmoid - [Dropout] per hidden
    layer, then Affine and softmax cross entropy plus ``0.5 * lambda * sum(W**2)``."""

    def __init__(self, params, hidden_layer_num, activation="relu", weight_decay_lambda=0,
                 use_dropout=False, dropout_ratio=0.5, use_batchnorm=False):
        self.params = params
        self.L = hidden_layer_num
        self.activation = activation
        self.lam = weight_decay_lambda
        self.use_dropout, self.ratio, self.use_batchnorm = use_dropout, dropout_ratio, use_batchnorm
        self.running = {}  # idx -> [mean, var], as the book's layers start them (zeros)

    def _forward(self, x, train_flg):
        p, caches = self.params, []
        for i in range(1, self.L + 1):
            c = {"x": x}
            x = np.dot(x, p[f"W{i}"]) + p[f"b{i}"]
            if self.use_batchnorm:
                mean, var = self.running.setdefault(i, [np.zeros(x.shape[1]), np.zeros(x.shape[1])])
                if train_flg:
                    mu = x.mean(axis=0)
                    xc = x - mu
                    v = np.mean(xc ** 2, axis=0)
                    std = np.sqrt(v + 10e-7)
                    xn = xc / std
                    c.update(xc=xc, xn=xn, std=std)
                    self.running[i] = [0.9 * mean + 0.1 * mu, 0.9 * var + 0.1 * v]
                else:
                    xn = (x - mean) / np.sqrt(var + 10e-7)
                x = p[f"gamma{i}"] * xn + p[f"beta{i}"]
            if self.activation == "relu":
                c["mask"] = x <= 0
                x = np.where(c["mask"], 0, x)
            else:
                x = 1 / (1 + np.exp(-x))
                c["out"] = x
            if self.use_dropout:
                if train_flg:
                    c["drop"] = np.random.rand(*x.shape) > self.ratio
                    x = x * c["drop"]
                else:
                    x = x * (1.0 - self.ratio)
            caches.append(c)
        caches.append({"x": x})
        n = self.L + 1
        return np.dot(x, p[f"W{n}"]) + p[f"b{n}"], caches

    def predict(self, x, train_flg=False):
        return self._forward(x, train_flg)[0]

    def loss(self, x, t, train_flg=False):
        a = self.predict(x, train_flg)
        a = a - np.max(a, axis=-1, keepdims=True)
        y = np.exp(a) / np.sum(np.exp(a), axis=-1, keepdims=True)
        N = y.shape[0]
        decay = 0
        for i in range(1, self.L + 2):
            decay += 0.5 * self.lam * np.sum(self.params[f"W{i}"] ** 2)
        return -np.sum(np.log(y[np.arange(N), t] + 1e-7)) / N + decay

    def gradient(self, x, t):
        """Gradients in training mode; ``t`` holds class indices."""
        p = self.params
        a, caches = self._forward(x, True)
        a = a - np.max(a, axis=-1, keepdims=True)
        y = np.exp(a) / np.sum(np.exp(a), axis=-1, keepdims=True)
        N = y.shape[0]
        d = y.copy()
        d[np.arange(N), t] -= 1
        d = d / N
        n, grads = self.L + 1, {}
        grads[f"W{n}"] = np.dot(caches[-1]["x"].T, d) + self.lam * p[f"W{n}"]
        grads[f"b{n}"] = np.sum(d, axis=0)
        d = np.dot(d, p[f"W{n}"].T)
        for i in range(self.L, 0, -1):
            c = caches[i - 1]
            if self.use_dropout:
                d = d * c["drop"]
            if self.activation == "relu":
                d = np.where(c["mask"], 0, d)
            else:
                d = d * (1.0 - c["out"]) * c["out"]
            if self.use_batchnorm:
                grads[f"beta{i}"] = d.sum(axis=0)
                grads[f"gamma{i}"] = np.sum(c["xn"] * d, axis=0)
                dxn = p[f"gamma{i}"] * d
                dxc = dxn / c["std"]
                dstd = -np.sum((dxn * c["xc"]) / (c["std"] * c["std"]), axis=0)
                dxc += (2.0 / N) * c["xc"] * (0.5 * dstd / c["std"])
                d = dxc - np.sum(dxc, axis=0) / N
            grads[f"W{i}"] = np.dot(c["x"].T, d) + self.lam * p[f"W{i}"]
            grads[f"b{i}"] = np.sum(d, axis=0)
            d = np.dot(d, p[f"W{i}"].T)
        return grads
