"""Winograd minimal filtering F(4×4, 3×3) for stride-1 3×3 convolutions (Lavin & Gray 2015).

The derivation, in one dimension. A 3-tap correlation of a 6-sample tile d gives 4 outputs
y_i = sum_j d[i+j] g[j]. Read d and g as the coefficients of polynomials: y is the middle
part of their product, and a product of polynomials of degrees 2 and 5 is fixed by its values
at 6 points. Evaluate both at six points (here 0, 1, −1, 2, −½ and ∞) (G g and B^T d: 6
values each), multiply the values pairwise (6 multiplications instead of 12), and
interpolate back (A^T);
``toom_cook`` builds the three matrices from the points:

    y = A^T [(G g) ⊙ (B^T d)]

In two dimensions the tile is 6×6, the output 4×4, and the transforms apply on both sides:

    Y = A^T [(G g G^T) ⊙ (B^T d B)] A

so 36 multiplications replace 144: 4× fewer for the dominant part of the work. Across a
convolution layer the elementwise product becomes, for each of the 36 tile positions (a, b),
a sum over input channels — a matrix product:

    M[ab] (P × C_out) = V[ab] (P × C_in) @ U[ab] (C_in × C_out)

with V = B^T d B for the P tiles of the (padded) input, U = G g G^T for every filter pair.
That is what this module computes, all vectorised:

1. tile gather: the overlapping 6×6 tiles (stride 4) of the padded NHWC input, one copy into
   a (36, P·C_in) matrix;
2. input transform: V = (B^T ⊗ B^T) @ that matrix — one small dense product (36×36);
3. filter transform: U = (G ⊗ G) @ w as a (9, C_in·C_out) matrix — a 36×9 product;
4. 36 batched GEMMs M = V @ U;
5. output transform: (A^T ⊗ A^T) @ M (16×36), then the 4×4 tiles back into NHWC, cropped.

Gradients are the same computation read backwards (every step above is linear):
dM = (A^T ⊗ A^T)^T @ dY tiles, dU = V^T @ dM, dw = (G ⊗ G)^T @ dU; the input gradient is a
stride-1 transposed convolution, itself a Winograd convolution of the output gradient with
the flipped, in/out-swapped kernel. The transformed input V from the forward pass is reused
by the weight gradient.

Accuracy: the transforms' constants (up to 1/24 and 8) cost some float32 precision; the
error stays around 1e-6–1e-5 relative to the output's largest value (tested against a float64
reference). ``NEEDLE_WINOGRAD=0`` (or ``winograd.ENABLED = False``) switches it off.
Shapes, as everywhere in ``ops/conv.py``: images N×H×W×C, weights 3×3×C_in×C_out.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from ...backend_ndarray import NDArray, blas
from ...backend_ndarray.ndarray import _wrap

TILE, OUT = 6, 4  # input tile (m + r - 1) and output tile (m) of F(4, 3)

POINTS = (0.0, 1.0, -1.0, 2.0, -0.5)  # and ∞; Lavin's 0, ±1, ±2 measure twice the error


def toom_cook(points: tuple[float, ...], m: int = OUT, r: int = 3
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A^T, G, B^T) of F(m, r) for the finite ``points`` and ∞ (modified Toom-Cook):
    A^T evaluates the m outputs' polynomial at each point, A^T[i, k] = p_k^i; G evaluates the
    filter, G[k, j] = p_k^j / prod_{l != k} (p_k - p_l); ∞ takes the leading coefficients.
    B^T is then the one matrix that makes y = A^T[(G g) ⊙ (B^T d)] the correlation
    y_i = sum_j d[i+j] g[j] for every d and g: a linear system, solved exactly."""
    n = m + r - 1
    a_t, g = np.zeros((m, n)), np.zeros((n, r))
    for k, p in enumerate(points):
        a_t[:, k] = p ** np.arange(m)
        g[k] = p ** np.arange(r) / math.prod(p - q for q in points if q != p)
    a_t[m - 1, n - 1] = g[n - 1, r - 1] = 1
    # y_i = sum_{j,l} d_l g_j sum_k A^T[i,k] G[k,j] B^T[k,l] must pick out l = i + j
    products = np.einsum("ik,kj->ijk", a_t, g).reshape(m * r, n)
    picks = np.array([[float(l == i + j) for l in range(n)] for i in range(m) for j in range(r)])
    b_t = np.linalg.lstsq(products, picks, rcond=None)[0]
    return a_t, g, b_t


A_T, G, B_T = toom_cook(POINTS)

# The two-sided transforms as one matrix each, acting on a tile flattened row by row.
INPUT_TRANSFORM = np.kron(B_T, B_T)    # (36, 36): d (36,) -> B^T d B
FILTER_TRANSFORM = np.kron(G, G)       # (36, 9):  g (9,)  -> G g G^T
OUTPUT_TRANSFORM = np.kron(A_T, A_T)   # (16, 36): m (36,) -> A^T m A

MIN_CHANNELS = 32  # measured: 16->32 channels run 10 % slower than im2col, 32->32 34 % faster
ENABLED = os.environ.get("NEEDLE_WINOGRAD", "1") != "0"  # NEEDLE_WINOGRAD=0: im2col only


def applies(a_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: int,
            padding: int, dtype: Any) -> bool:
    """Whether conv(a, w) runs faster by Winograd: 3×3, stride 1, padding ≤ 2, float,
    channels wide enough, and an output at least one tile across."""
    if not ENABLED or w_shape[:2] != (3, 3) or stride != 1 or not 0 <= padding <= 2:
        return False
    if np.dtype(dtype) not in (np.float32, np.float64):
        return False
    out_h, out_w = a_shape[1] + 2 * padding - 2, a_shape[2] + 2 * padding - 2
    return min(out_h, out_w) >= OUT and min(w_shape[2], w_shape[3]) >= MIN_CHANNELS


def _constant(matrix: np.ndarray, like: NDArray) -> Any:
    """A transform matrix as an array of ``like``'s device and dtype."""
    return like.device.from_numpy(matrix.astype(like.dtype))


def _tiles(size: int) -> int:
    """Output tiles needed along one axis for ``size`` outputs."""
    return math.ceil(size / OUT)


# ---------------------------------------------------------------------- forward
def transform_input(a: NDArray, padding: int) -> NDArray:
    """V (36, P, C): B^T d B for each of the P = N·T_h·T_w overlapping 6×6 tiles of
    a (N, H, W, C) zero-padded by ``padding`` (and on the far sides up to whole tiles)."""
    xp, (n, h, w, c) = a.device.module(), a.shape
    t_h, t_w = _tiles(h + 2 * padding - 2), _tiles(w + 2 * padding - 2)
    padded = xp.zeros((n, OUT * t_h + 2, OUT * t_w + 2, c), dtype=a.dtype)
    padded[:, padding:padding + h, padding:padding + w] = a._array
    sn, sh, sw, sc = padded.strides
    tiles = xp.lib.stride_tricks.as_strided(
        padded, (TILE, TILE, n, t_h, t_w, c), (sh, sw, sn, OUT * sh, OUT * sw, sc))
    d = xp.ascontiguousarray(tiles).reshape(TILE * TILE, -1)
    v = blas.matmul(xp, _constant(INPUT_TRANSFORM, a), d)
    return _wrap(v.reshape(TILE * TILE, -1, c), a.device)


def transform_filter(w: NDArray) -> NDArray:
    """U (36, C_in, C_out): G g G^T for each filter of w (3, 3, C_in, C_out)."""
    c_in, c_out = w.shape[2], w.shape[3]
    flat = w.compact()._array.reshape(9, c_in * c_out)
    u = blas.matmul(w.device.module(), _constant(FILTER_TRANSFORM, w), flat)
    return _wrap(u.reshape(36, c_in, c_out), w.device)


def conv2d(v: NDArray, w: NDArray, out_shape: tuple[int, ...]) -> NDArray:
    """The convolution (N, H_out, W_out, C_out) from the transformed input ``v`` (36, P, C_in)
    and the weight w (3, 3, C_in, C_out): 36 GEMMs, then the output transform."""
    n, out_h, out_w, c_out = out_shape
    xp = v.device.module()
    m = blas.matmul(xp, v._array, transform_filter(w)._array)             # (36, P, C_out)
    y = blas.matmul(xp, _constant(OUTPUT_TRANSFORM, w), m.reshape(TILE * TILE, -1))  # (16, P·C_o)
    t_h, t_w = _tiles(out_h), _tiles(out_w)
    y = y.reshape(OUT, OUT, n, t_h, t_w, c_out).transpose(2, 3, 0, 4, 1, 5)
    y = xp.ascontiguousarray(y).reshape(n, OUT * t_h, OUT * t_w, c_out)
    return _wrap(y[:, :out_h, :out_w], v.device)


# ---------------------------------------------------------------------- weight gradient
def transform_output_grad(g: NDArray) -> Any:
    """dM (36, P, C_out): the adjoint of the output transform applied to the 4×4 tiles of
    g (N, H_out, W_out, C_out), zero beyond the image."""
    xp, (n, out_h, out_w, c) = g.device.module(), g.shape
    t_h, t_w = _tiles(out_h), _tiles(out_w)
    image = g._array
    if (out_h, out_w) != (OUT * t_h, OUT * t_w):
        image = xp.zeros((n, OUT * t_h, OUT * t_w, c), dtype=g.dtype)
        image[:, :out_h, :out_w] = g._array
    tiles = image.reshape(n, t_h, OUT, t_w, OUT, c).transpose(2, 4, 0, 1, 3, 5)
    flat = xp.ascontiguousarray(tiles).reshape(OUT * OUT, -1)
    return blas.matmul(xp, _constant(OUTPUT_TRANSFORM, g).T, flat).reshape(TILE * TILE, -1, c)


def conv2d_weight(v: NDArray, g: NDArray) -> NDArray:
    """dw (3, 3, C_in, C_out) of sum(conv2d(v, w) * g), from the transformed input v."""
    d_m = transform_output_grad(g)
    xp = g.device.module()
    d_u = blas.matmul(xp, v._array.transpose(0, 2, 1), d_m)           # (36, C_in, C_out)
    c_in, c_out = d_u.shape[1], d_u.shape[2]
    d_w = blas.matmul(xp, _constant(FILTER_TRANSFORM, g).T, d_u.reshape(TILE * TILE, -1))
    return _wrap(d_w.reshape(3, 3, c_in, c_out), g.device)
