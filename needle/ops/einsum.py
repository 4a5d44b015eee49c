"""Einstein summation: ``einsum("ij,jk->ik", a, b)``, with every gradient another einsum.

``einsum`` turns what PyTorch accepts (implicit output, ``...``, size-1 axes that broadcast)
into one explicit ``Einsum`` over operands whose equal letters have equal sizes; the
broadcasting becomes explicit ``broadcast_to`` nodes first. A primitive because one
contraction along BLAS paths is much faster than the products and sums it stands for.
"""

from __future__ import annotations

import functools
import string
from typing import Any, Sequence

import numpy as np

from .. import backend_ndarray as nd
from ..autograd import NDArray, Tensor, TensorOp
from .broadcast import as_tensor
from .shape import broadcast_to, reshape

LETTERS = string.ascii_letters
Sizes = dict[str, int]


class Einsum(TensorOp):
    """f(a_1..a_n) = einsum("s_1,..,s_n->s_out", a_1..a_n), explicit form, no ellipsis;
    df/da_i = einsum("s_out,s_j (j != i)->s_i", g, a_j): a letter repeated in s_i (a trace or
    diagonal) comes back through an identity-matrix operand, and a letter summed inside a_i
    alone is broadcast back. The gradient is an einsum, so it differentiates again."""

    def __init__(self, inputs: Sequence[str], output: str):
        self.inputs, self.output = tuple(inputs), output
        self.subscripts = ",".join(self.inputs) + "->" + output

    def compute(self, *arrays: NDArray) -> NDArray:
        return nd.einsum(self.subscripts, *arrays)

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor | None, ...]:
        sizes = _letter_sizes(self.inputs, [x.shape for x in node.inputs])
        return tuple(self._adjoint(i, out_grad, node.inputs, sizes) if x.requires_grad
                     else None for i, x in enumerate(node.inputs))

    def _adjoint(self, i: int, out_grad: Tensor, inputs: Sequence[Tensor],
                 sizes: Sizes) -> Tensor:
        sizes = dict(sizes)
        subs = [self.output] + [s for j, s in enumerate(self.inputs) if j != i]
        operands = [out_grad] + [x for j, x in enumerate(inputs) if j != i]
        spare = iter(c for c in LETTERS if c not in self.subscripts)
        target, seen = [], set()
        for letter in self.inputs[i]:
            if letter in seen:  # the 2nd i of "ii": a delta_{i i'} operand puts g on the diagonal
                new = next(spare)
                subs.append(letter + new)
                operands.append(_identity(sizes[letter], out_grad))
                sizes[new] = sizes[letter]
                letter = new
            seen.add(letter)
            target.append(letter)
        present = set("".join(subs))
        kept = "".join(c for c in target if c in present)
        grad = operands[0] if subs == [kept] else Einsum(subs, kept)(*operands)
        if len(kept) == len(target):
            return grad
        ones = tuple(sizes[c] if c in present else 1 for c in target)
        return broadcast_to(reshape(grad, ones), inputs[i].shape)


def _identity(n: int, like: Tensor) -> Tensor:
    """The n x n identity as a constant of ``like``'s dtype and device."""
    return Tensor.make_const(nd.array(np.eye(n), dtype=like.dtype, device=like.device))


def _letter_sizes(inputs: Sequence[str], shapes: Sequence[tuple[int, ...]]) -> Sizes:
    return {c: n for term, shape in zip(inputs, shapes) for c, n in zip(term, shape)}


# ------------------------------------------------------------------ parsing
def _split(subscripts: str, count: int) -> tuple[list[str], str | None]:
    """The input terms and the output term (None in implicit mode), checked for syntax."""
    spec = subscripts.replace(" ", "")
    if spec.count("->") > 1:
        raise ValueError(f"einsum: subscripts {subscripts!r} have more than one '->'")
    lhs, arrow, rhs = spec.partition("->")
    terms = lhs.split(",")
    if len(terms) != count:
        raise ValueError(f"einsum: subscripts {subscripts!r} name {len(terms)} operands, "
                         f"got {count}")
    for term in terms + ([rhs] if arrow else []):
        rest = term.replace("...", "", 1)
        bad = [c for c in rest if c not in LETTERS]
        if bad:
            raise ValueError(f"einsum: subscripts {subscripts!r}: {bad[0]!r} in {term!r} is "
                             f"not a letter (a-z, A-Z) or one '...'")
    return terms, rhs if arrow else None


def _expand(term: str, ndim: int, ellipsis: str, index: int, subscripts: str) -> str:
    """``term`` with its ``...`` replaced by the last letters of ``ellipsis``."""
    named = len(term.replace("...", ""))
    if "..." not in term:
        if named != ndim:
            raise ValueError(f"einsum: subscripts {subscripts!r} give operand {index} "
                             f"{named} dims ({term!r}), but it has {ndim}")
        return term
    if named > ndim:
        raise ValueError(f"einsum: subscripts {subscripts!r} give operand {index} at least "
                         f"{named} dims ({term!r}), but it has {ndim}")
    return term.replace("...", ellipsis[len(ellipsis) - (ndim - named):])


def _output(terms: list[str], output: str | None, ellipsis: str, subscripts: str) -> str:
    """The explicit output: implicit mode gives ``...`` then the letters seen once, sorted;
    PyTorch's rule sums ellipsis dims that an explicit output leaves out."""
    if output is None:
        letters = "".join(terms)
        once = sorted(c for c in set(letters) if letters.count(c) == 1 and c not in ellipsis)
        return ellipsis + "".join(once)
    out = output.replace("...", ellipsis)
    for c in out:
        if out.count(c) > 1:
            raise ValueError(f"einsum: output {output!r} of {subscripts!r} repeats {c!r}")
        if c not in "".join(terms):
            raise ValueError(f"einsum: output {output!r} of {subscripts!r} has {c!r}, which "
                             f"no operand has")
    return out


def _target_sizes(terms: list[str], shapes: list[tuple[int, ...]], subscripts: str) -> Sizes:
    """Each letter's size: equal in every operand, or 1 there (broadcast)."""
    sizes: Sizes = {}
    for index, (term, shape) in enumerate(zip(terms, shapes)):
        for c, n in zip(term, shape):
            if sizes.get(c, 1) not in (1, n) and n != 1:
                raise ValueError(f"einsum: {subscripts!r}: index {c!r} has size {sizes[c]} "
                                 f"in an earlier operand but {n} in operand {index} (shape "
                                 f"{shape})")
            sizes[c] = max(sizes.get(c, 1), n)
    return sizes


def _ellipsis_shape(shape: tuple[int, ...], term: str, expanded: str,
                    ellipsis: str) -> tuple[int, ...] | None:
    """``shape`` with size-1 axes inserted where its ``...`` has fewer dims than the widest
    (None when it needs none)."""
    if "..." not in term or len(expanded) == len(term) - 3 + len(ellipsis):
        return None
    start = term.index("...")
    missing = len(term) - 3 + len(ellipsis) - len(expanded)
    return shape[:start] + (1,) * missing + shape[start:]


Plan = tuple[tuple[str, ...], str, tuple[Any, ...], tuple[Any, ...]]


@functools.lru_cache(maxsize=512)
def _plan(subscripts: str, shapes: tuple[tuple[int, ...], ...]) -> Plan:
    """The explicit terms and output, and for each operand the shape to reshape it to (for
    its ``...``) and to broadcast it to (None for none): parsing runs once per pattern."""
    terms, output = _split(subscripts, len(shapes))
    used = set("".join(terms))
    widest = max([len(s) - len(t.replace("...", "")) for t, s in zip(terms, shapes)
                  if "..." in t] or [0])
    ellipsis = "".join([c for c in LETTERS if c not in used][:max(widest, 0)])
    expanded = [_expand(t, len(s), ellipsis, i, subscripts)
                for i, (t, s) in enumerate(zip(terms, shapes))]
    reshapes = tuple(_ellipsis_shape(s, t, e, ellipsis)
                     for s, t, e in zip(shapes, terms, expanded))
    shapes = tuple(r or s for r, s in zip(reshapes, shapes))
    terms = [t.replace("...", ellipsis) for t in terms]
    sizes = _target_sizes(terms, list(shapes), subscripts)
    targets = tuple(tuple(sizes[c] for c in t) for t in terms)
    broadcasts = tuple(None if t == s else t for t, s in zip(targets, shapes))
    return tuple(terms), _output(terms, output, ellipsis, subscripts), reshapes, broadcasts


def einsum(subscripts: str, *operands: Any) -> Tensor:
    """Einstein summation like ``torch.einsum``: ``"ij,jk->ik"`` (matmul), ``"ii->"``
    (trace), ``"ii->i"`` (diagonal), ``"...ij->...ji"``, implicit outputs (``"ij,jk"``).

    >>> a, b = Tensor([[1.0, 2.0]]), Tensor([[3.0], [4.0]])
    >>> einsum("ij,jk->ik", a, b).numpy().tolist()
    [[11.0]]
    """
    like = next((x for x in operands if isinstance(x, Tensor)), None)
    tensors = [as_tensor(x, like) if like is not None else Tensor(x) for x in operands]
    terms, output, reshapes, broadcasts = _plan(subscripts.replace(" ", ""),
                                                tuple(x.shape for x in tensors))
    tensors = [x if r is None else reshape(x, r) for x, r in zip(tensors, reshapes)]
    tensors = [x if b is None else broadcast_to(x, b) for x, b in zip(tensors, broadcasts)]
    return Einsum(terms, output)(*tensors)


