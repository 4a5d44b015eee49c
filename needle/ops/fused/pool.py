"""Max pooling over non-overlapping windows (stride = kernel, no padding): a speed primitive.

It replaces the composition ``max(im2col(a, k, stride=k), axes=(3, 4))`` that
``ops.max_pool2d`` uses in general. Its forward takes the elementwise maximum of the k²
strided views a[:, i::k, j::k] (no window view, no padding, no reduction over small axes),
and its gradient is one node (``MaxPoolGrad``) where the composed max records a comparison,
a sum, a division and a scatter (col2im) node. Rows and columns past the last whole window
are dropped, as PyTorch's floor mode does; ties share the gradient evenly, as the composed
max does.
"""

from __future__ import annotations

from typing import Any

from ...autograd import NDArray, Tensor, TensorOp
from ...backend_ndarray.ndarray import _wrap
from ..indexing import getitem


def _offsets(a: Any, k: int) -> list[Any]:
    """The k² strided views a[:, i::k, j::k] of a (N, H, W, C), each (N, H//k, W//k, C):
    element (i, j) of every window. Elementwise passes over these beat numpy's reductions
    over the small window axes."""
    n, h, w, c = a.shape
    rows, cols = h - h % k, w - w % k
    return [a[:, i:rows:k, j:cols:k] for i in range(k) for j in range(k)]


def _window_max(a: Any, xp: Any, k: int) -> Any:
    """The max of each window: (N, H//k, W//k, C)."""
    parts = _offsets(a, k)
    out = parts[0].copy()
    for part in parts[1:]:
        xp.maximum(out, part, out=out)
    return out


def _routing(a: Any, y: Any, k: int, xp: Any) -> tuple[list[Any], Any]:
    """Where each window's gradient goes: for each offset (i, j), whether it holds the
    window's max y (booleans), and 1/ties per window, or None when no window ties (the
    share is then the booleans themselves). A window of NaNs has no hit (NaN != NaN) and
    gets no gradient. After a ReLU, windows of zeros tie often, so the tie case is common
    in CNNs: one division of g by the counts, not one per offset."""
    hits = [part == y for part in _offsets(a, k)]
    count = hits[0].astype(xp.min_scalar_type(k * k))  # uint8 up to 15x15 windows
    for hit in hits[1:]:
        count += hit
    return hits, _inverse_ties(count, y.dtype, xp)


def _inverse_ties(count: Any, dtype: Any, xp: Any) -> Any:
    """1/ties per window from the windows' counts of maxima (a NaN window's 0 counted as
    1), or None when no window ties."""
    if not bool((count != 1).any()):
        return None
    return 1 / xp.maximum(count, 1).astype(dtype)


def _shared(g: Any, inverse_ties: Any) -> Any:
    """Each window's adjoint g split among its ties."""
    return g if inverse_ties is None else g * inverse_ties


def _shares(a: Any, y: Any, k: int, xp: Any) -> list[Any]:
    """For each offset, the share of its window's gradient: 1/ties where it holds the
    window's max, else 0."""
    hits, inverse_ties = _routing(a, y, k, xp)
    return hits if inverse_ties is None else [hit * inverse_ties for hit in hits]


#: MaxPoolGrad's windows in whole rows (``_routed_by_rows``) where they cover a contiguous
#: input; False: the per-offset loop alone (the same values).
BY_ROWS = True


def _routed_by_rows(xp: Any, g: Any, a: Any, y: Any, k: int) -> Any:
    """MaxPoolGrad's values for a C-contiguous a (N, H, W, C) whose k×k windows cover it:
    g (N, H/k, W/k, C) routed to the maxima y, shared among ties as ``_routing`` does.

    a is viewed as (N, H/k, k, W/k, k C): window row i of a row of windows is then one
    contiguous run of W C values, matched against y repeated k times along its last axis (y
    for every column j). So numpy's loops run W C values long, not C as over the strided
    offsets. The small MNIST CNN's first pooling, (64, 28, 28, 16) after a ReLU: 3.6 -> 2.2
    ms (medians of 8 alternating runs; its second, (64, 14, 14, 32), 0.65 -> 0.62 ms); its
    step 30.4 -> 28.7 and 27.4 -> 25.7 ms in two runs of 10 alternating blocks."""
    n, h, w, c = a.shape
    rows = a.reshape(n, h // k, k, w // k, k * c)
    hits = rows == xp.tile(y, (1, 1, 1, k))[:, :, None]   # (N, H/k, k, W/k, k C)
    per_column = hits[:, :, 0].astype(xp.min_scalar_type(k * k))
    for i in range(1, k):
        per_column += hits[:, :, i]
    count = per_column[..., :c].copy()                     # (N, H/k, W/k, C)
    for j in range(1, k):
        count += per_column[..., j * c:(j + 1) * c]
    shared = _shared(g, _inverse_ties(count, y.dtype, xp))
    routed = xp.multiply(hits, xp.tile(shared, (1, 1, 1, k))[:, :, None], dtype=g.dtype)
    return routed.reshape(a.shape)


class MaxPool(TensorOp):
    """f(a) = the max of each k×k window of a (N, H, W, C), windows k apart:
    (N, H//k, W//k, C); df = g routed to each window's maxima (MaxPoolGrad)."""

    def __init__(self, kernel: int):
        self.kernel = kernel

    def compute(self, a: NDArray) -> NDArray:
        return _wrap(_window_max(a._array, a.device.module(), self.kernel), a.device)

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return MaxPoolGrad(self.kernel)(out_grad, node.inputs[0], node)


class MaxPoolGrad(TensorOp):
    """f(g, a, y) = g routed to the maxima y of a's k×k windows, shared evenly among ties,
    zero elsewhere: (N, H, W, C). Linear in g, so df/dg u = the window sums of u × share;
    zero almost everywhere in a and y (the routing is piecewise constant)."""

    def __init__(self, kernel: int):
        self.kernel = kernel

    def compute(self, g: NDArray, a: NDArray, y: NDArray) -> NDArray:
        xp, k = a.device.module(), self.kernel
        n, h, w, c = a.shape
        covered = h % k == 0 and w % k == 0  # else rows and columns past the windows get 0
        if covered and BY_ROWS and a._array.flags.c_contiguous:
            return _wrap(_routed_by_rows(xp, g._array, a._array, y._array, k), a.device)
        out = xp.empty(a.shape, dtype=g.dtype) if covered else xp.zeros(a.shape, dtype=g.dtype)
        hits, inverse_ties = _routing(a._array, y._array, k, xp)
        shared = _shared(g._array, inverse_ties)
        for target, hit in zip(_offsets(out, k), hits):
            xp.multiply(hit, shared, out=target)
        return _wrap(out, a.device)

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor | None, ...]:
        g, a, y = node.inputs
        shares = _shares(a.cached_data._array, y.cached_data._array, self.kernel,
                         a.device.module())
        parts = [getitem(out_grad, index) for index in _offset_indices(a.shape, self.kernel)]
        terms = [part * Tensor.make_const(_wrap(share, a.device))
                 for part, share in zip(parts, shares)]
        return sum(terms[1:], terms[0]), None, None


def _offset_indices(shape: tuple[int, ...], k: int) -> list[tuple[slice, ...]]:
    """The indices of ``_offsets``, for Tensors."""
    rows, cols = shape[1] - shape[1] % k, shape[2] - shape[2] % k
    return [(slice(None), slice(i, rows, k), slice(j, cols, k))
            for i in range(k) for j in range(k)]


def max_pool(a: Tensor, kernel_size: int) -> Tensor:
    """The max of each non-overlapping kernel_size² window of a (N, H, W, C)."""
    return MaxPool(kernel_size)(a)
