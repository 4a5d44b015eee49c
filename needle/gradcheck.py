"""Gradient checking: ``backward()`` against central finite differences in float64.

``gradcheck(fn, *inputs)`` casts the floating inputs to float64 (the caller's tensors are
left alone), runs ``fn`` and ``backward()``, then moves each input element by ±eps::

    numeric_j = (L(x + eps e_j) - L(x - eps e_j)) / (2 eps),   L = sum_k v_k fn(x)_k

for a fixed random projection ``v`` (v = 1 for a one-element output), i.e. one column of
Jᵀv, as Chainer's ``check_backward`` does. Element j passes when
``|analytic_j - numeric_j| <= atol + rtol |numeric_j|`` (PyTorch's rule). ``fast_mode``
checks one random direction u of all inputs at once: ``<grad, u>`` against
``(L(x + eps u) - L(x - eps u)) / (2 eps)`` — two evaluations instead of two per element.

``gradgradcheck`` applies the same check to the function ``x -> d<fn(x), v>/dx`` built with
``backward(create_graph=True)``, i.e. to second derivatives.

The cs231n helpers keep their course signatures and work on numpy arrays and needle Tensors
alike (a Tensor is perturbed in place through ``.data``, as cs231n perturbs arrays).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from .autograd import Tensor, TensorTuple, enable_grad, no_grad

Array = np.ndarray


class GradcheckError(RuntimeError):
    """A gradient differs from its finite-difference estimate (PyTorch's name)."""


# ---------------------------------------------------------------------------- inputs
def _is_floating(x: Any) -> bool:
    dtype = x.dtype if isinstance(x, (Tensor, np.ndarray)) else None
    return dtype is not None and np.issubdtype(dtype, np.floating)


def _prepare(inputs: Sequence[Any]) -> tuple[list[Any], list[bool]]:
    """float64 copies of the floating inputs, and which of them are checked: Tensors that
    require grad and floating numpy arrays. Other values are passed through unchanged."""
    values, checked = [], []
    for x in inputs:
        wants = _is_floating(x) and (not isinstance(x, Tensor) or x.requires_grad)
        if _is_floating(x):
            device = x.device if isinstance(x, Tensor) else None
            host = x.numpy() if isinstance(x, Tensor) else x
            x = Tensor(np.array(host, dtype=np.float64), device=device, dtype="float64",
                       requires_grad=wants)
        values.append(x)
        checked.append(wants)
    if not any(checked):
        kinds = ", ".join(f"input {i}: {_describe(x)}" for i, x in enumerate(inputs))
        raise TypeError("gradcheck needs at least one floating-point input to differentiate "
                        f"(a float Tensor with requires_grad=True or a float numpy array); "
                        f"got {kinds or 'no inputs'}")
    return values, checked


def _describe(x: Any) -> str:
    if isinstance(x, Tensor):
        return f"Tensor of dtype {x.dtype}, requires_grad={x.requires_grad}"
    if isinstance(x, np.ndarray):
        return f"numpy array of dtype {x.dtype}"
    return type(x).__name__


def _outputs(out: Any) -> list[Tensor]:
    if isinstance(out, (tuple, list, TensorTuple)):
        return [o for o in out if isinstance(o, Tensor)]
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor or a tuple of Tensors, got "
                        f"{type(out).__name__}")
    return [out]


def _with_values(values: list[Any], checked: list[bool], host: list[Array]) -> list[Any]:
    """``values`` with the checked inputs replaced by Tensors of ``host`` (they require grad,
    as the caller's did, for functions that differentiate inside)."""
    it = iter(host)
    return [Tensor(next(it), device=v.device, dtype="float64", requires_grad=True)
            if wants else v for v, wants in zip(values, checked)]


# ---------------------------------------------------------------------------- the check
def _project(outs: list[Tensor], projections: list[Array]) -> Tensor:
    """L = sum over outputs of sum(out * v)."""
    terms = [(o * Tensor(p, device=o.device, dtype=o.dtype, requires_grad=False)).sum()
             for o, p in zip(outs, projections)]
    return sum(terms[1:], terms[0])


def _analytic(fn: Callable[..., Any], values: list[Any], checked: list[bool],
              rng: np.random.Generator) -> tuple[list[Array], list[Array]]:
    """The projections and d<fn(x), v>/dx for each checked input (zeros where no gradient
    reaches it)."""
    outs = _outputs(fn(*values))
    projections = [np.ones(o.shape) if o.size == 1 else rng.standard_normal(o.shape)
                   for o in outs]
    loss = _project(outs, projections)
    if loss.requires_grad:
        loss.backward()
    grads = [v.grad.numpy().astype(np.float64) if loss.requires_grad and v.grad is not None
             else np.zeros(v.shape) for v, wants in zip(values, checked) if wants]
    return projections, grads


def _objective(fn: Callable[..., Any], values: list[Any], checked: list[bool],
               projections: list[Array]) -> Callable[[list[Array]], float]:
    def objective(host: list[Array]) -> float:
        with no_grad():
            loss = _project(_outputs(fn(*_with_values(values, checked, host))), projections)
        return float(loss.numpy())

    return objective


def gradcheck(fn: Callable[..., Any], *inputs: Any, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, raise_exception: bool = True, fast_mode: bool = False,
              seed: int = 0) -> bool:
    """True when ``backward()`` through ``fn(*inputs)`` matches central differences in
    float64 for every element of every checked input; otherwise raise GradcheckError
    naming the input, the element, both values and the relative error (or return False
    with ``raise_exception=False``). ``seed`` fixes the projection and the fast-mode
    direction (needle's global RNG is not touched)."""
    values, checked = _prepare(inputs)
    rng = np.random.default_rng(seed)
    projections, analytic = _analytic(fn, values, checked, rng)
    objective = _objective(fn, values, checked, projections)
    host = [np.array(v.numpy(), dtype=np.float64, order="C")
            for v, wants in zip(values, checked) if wants]
    index = [i for i, wants in enumerate(checked) if wants]
    check = _check_direction if fast_mode else _check_elements
    problem = check(objective, host, analytic, index, eps, atol, rtol, rng)
    if problem is None:
        return True
    if raise_exception:
        raise GradcheckError(problem)
    return False


def _check_elements(objective: Callable[[list[Array]], float], host: list[Array],
                    analytic: list[Array], index: list[int], eps: float, atol: float,
                    rtol: float, rng: np.random.Generator) -> str | None:
    for k, (x, grad) in enumerate(zip(host, analytic)):
        flat = x.reshape(-1)
        for j in range(flat.size):
            saved = flat[j]
            flat[j] = saved + eps
            upper = objective(host)
            flat[j] = saved - eps
            lower = objective(host)
            flat[j] = saved
            numeric = (upper - lower) / (2 * eps)
            element = np.unravel_index(j, x.shape) if x.ndim else ()
            value = float(grad[element])
            if not abs(value - numeric) <= atol + rtol * abs(numeric):
                return (f"gradcheck: gradient of input {index[k]} (shape {x.shape}) differs "
                        f"at element {tuple(int(e) for e in element)}: backward() gives "
                        f"{value:.8g}, finite differences give {numeric:.8g} (relative "
                        f"error {_relative(value, numeric):.3g}; atol={atol}, rtol={rtol})")
    return None


def _check_direction(objective: Callable[[list[Array]], float], host: list[Array],
                     analytic: list[Array], index: list[int], eps: float, atol: float,
                     rtol: float, rng: np.random.Generator) -> str | None:
    directions = [rng.standard_normal(x.shape) for x in host]
    norm = np.sqrt(sum(float((u * u).sum()) for u in directions)) or 1.0
    directions = [u / norm for u in directions]
    value = sum(float((g * u).sum()) for g, u in zip(analytic, directions))
    upper = objective([x + eps * u for x, u in zip(host, directions)])
    lower = objective([x - eps * u for x, u in zip(host, directions)])
    numeric = (upper - lower) / (2 * eps)
    if abs(value - numeric) <= atol + rtol * abs(numeric):
        return None
    inputs = ("input " if len(index) == 1 else "inputs ") + ", ".join(map(str, index))
    return (f"gradcheck (fast_mode): the derivative of {inputs} along a random "
            f"direction differs: backward() gives {value:.8g}, finite differences give "
            f"{numeric:.8g} (relative error {_relative(value, numeric):.3g}; atol={atol}, "
            f"rtol={rtol}); run without fast_mode to find the element")


def _relative(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


def gradgradcheck(fn: Callable[..., Any], *inputs: Any, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, raise_exception: bool = True, fast_mode: bool = False,
                  seed: int = 0) -> bool:
    """``gradcheck`` of the first derivatives: of ``x -> d<fn(x), v>/dx`` for a fixed random
    ``v``, built with ``backward(create_graph=True)``; so it checks second derivatives."""
    values, checked = _prepare(inputs)
    rng = np.random.default_rng(seed + 1)
    projections = [rng.standard_normal(o.shape) for o in _outputs(fn(*values))]

    def first_derivatives(*xs: Any) -> tuple[Tensor, ...]:
        with enable_grad():
            loss = _project(_outputs(fn(*xs)), projections)
            loss.backward(create_graph=True)
            return tuple(x.grad if x.grad is not None else x * 0
                         for x, wants in zip(xs, checked) if wants)

    return gradcheck(first_derivatives, *values, eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception, fast_mode=fast_mode, seed=seed)


# ---------------------------------------------------------------------------- cs231n helpers
def _as_float(value: Any) -> Any:
    return value.numpy() if isinstance(value, Tensor) else np.asarray(value)


class _Perturbable:
    """Reads and writes elements of a numpy array, or of a Tensor through ``.data``."""

    def __init__(self, x: Any):
        self.x = x
        self.host = x.numpy().copy() if isinstance(x, Tensor) else x
        self.original = x.detach() if isinstance(x, Tensor) else None

    def __getitem__(self, ix: tuple[int, ...]) -> Any:
        return self.host[ix]

    def __setitem__(self, ix: tuple[int, ...], value: Any) -> None:
        self.host[ix] = value
        if isinstance(self.x, Tensor):
            self.x.data = self.host

    def restore(self) -> None:
        if self.original is not None:
            self.x.data = self.original


def _on_both_sides(cell: Any, ix: tuple[int, ...], h: float, value: Callable[[], Any]
                   ) -> tuple[Any, Any]:
    """(value() with x[ix] + h, value() with x[ix] - h); x[ix] restored afterwards."""
    oldval = cell[ix]
    cell[ix] = oldval + h
    plus = value()
    cell[ix] = oldval - h
    minus = value()
    cell[ix] = oldval
    return plus, minus


def eval_numerical_gradient(f: Callable[[Any], Any], x: Any, verbose: bool = True,
                            h: float = 0.00001) -> Array:
    """cs231n's numerical gradient of a scalar ``f`` at ``x`` (an array or a Tensor, moved
    in place and restored): (f(x + h e_i) - f(x - h e_i)) / 2h for every index i."""
    cell = _Perturbable(x)
    grad = np.zeros(cell.host.shape, dtype=np.float64)
    try:
        for ix in np.ndindex(*cell.host.shape):
            fxph, fxmh = _on_both_sides(cell, ix, h, lambda: float(_as_float(f(x))))
            grad[ix] = (fxph - fxmh) / (2 * h)
            if verbose:
                print(ix, grad[ix])
    finally:
        cell.restore()
    return grad


def eval_numerical_gradient_array(f: Callable[[Any], Any], x: Any, df: Any,
                                  h: float = 1e-5) -> Array:
    """cs231n's numerical gradient of sum(f(x) * df) for an array-valued ``f``."""
    cell = _Perturbable(x)
    df = _as_float(df)
    grad = np.zeros(cell.host.shape, dtype=np.float64)
    try:
        for ix in np.ndindex(*cell.host.shape):
            pos, neg = _on_both_sides(cell, ix, h,
                                      lambda: np.array(_as_float(f(x)), dtype=np.float64))
            grad[ix] = np.sum((pos - neg) * df) / (2 * h)
    finally:
        cell.restore()
    return grad


def grad_check_sparse(f: Callable[[Any], Any], x: Any, analytic_grad: Any, num_checks: int = 10,
                      h: float = 1e-5, verbose: bool = True) -> list[float]:
    """cs231n's spot check: at ``num_checks`` random indices (drawn from numpy's global RNG,
    as every random number in needle is), print the numerical and the analytic gradient and
    their relative error; the relative errors are returned, for code that asserts on them."""
    cell = _Perturbable(x)
    analytic = _as_float(analytic_grad)
    errors = []
    try:
        for _ in range(num_checks):
            ix = tuple(np.random.randint(m) for m in cell.host.shape)
            fxph, fxmh = _on_both_sides(cell, ix, h, lambda: float(_as_float(f(x))))
            grad_numerical = (fxph - fxmh) / (2 * h)
            grad_analytic = float(analytic[ix])
            errors.append(abs(grad_numerical - grad_analytic) / (abs(grad_numerical)
                                                                 + abs(grad_analytic) + 1e-300))
            if verbose:
                print(f"numerical: {grad_numerical:f} analytic: {grad_analytic:f}, "
                      f"relative error: {errors[-1]:e}")
    finally:
        cell.restore()
    return errors


def rel_error(x: Any, y: Any) -> float:
    """cs231n's relative error: max |x - y| / max(1e-8, |x| + |y|)."""
    x, y = _as_float(x), _as_float(y)
    return float(np.max(np.abs(x - y) / (np.maximum(1e-8, np.abs(x) + np.abs(y)))))
