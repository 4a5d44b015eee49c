"""Graph view: the computational graph ``backward()`` would walk, as a self-contained SVG.

    ndl.viz.graph(loss, "step.svg", model=model)   # or "step.html" (the SVG embedded)

One box per node: ops show their class, output shape and dtype; leaves are marked —
Parameters (named by their path in ``model`` when given), other leaves that require grad,
and constants (inputs that need no gradient) — and edges run from each input to the op that
used it. The layout is our own, no Graphviz: nodes sit in rows by topological depth (the
longest path from a leaf; a leaf just above its first use), an edge that spans several rows
runs through a waypoint in each (so it never crosses a box), and a few sweeps down and up
order each row by the mean position of its neighbours, to cut crossings (Sugiyama's
layered drawing, in its simplest form).
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from typing import Any

from .autograd import Tensor, TensorTuple, Value, find_topo_sort

CHAR_WIDTH, LINE_HEIGHT, PAD, WAYPOINT_WIDTH = 7.0, 15.0, 8.0, 10.0
ROW_GAP, COL_GAP, MARGIN = 46.0, 18.0, 20.0
SWEEPS = 3  # down-and-up ordering passes of the layout
STYLE = {  # kind: (fill, stroke, dash)
    "op": ("#e8f0fe", "#3b6fd8", ""),
    "parameter": ("#e6f4ea", "#2e8b57", ""),
    "leaf": ("#fef7e0", "#c49000", ""),
    "constant": ("#f1f3f4", "#9aa0a6", "4 3"),
}


class _Box:
    """A laid-out node (or a waypoint of a long edge): text, kind, size, position and its
    neighbours in the rows above (``ups``) and below (``downs``: box, entry point)."""

    def __init__(self, node: Value | None, lines: list[str], kind: str):
        self.node, self.lines, self.kind = node, lines, kind
        self.width = max(len(line) for line in lines) * CHAR_WIDTH + 2 * PAD if lines \
            else WAYPOINT_WIDTH
        self.height = len(lines) * LINE_HEIGHT + PAD
        self.x = self.y = 0.0
        self.depth = 0
        self.ups: list[_Box] = []
        self.downs: list[tuple[_Box, float]] = []


@dataclass
class Layout:
    """Node boxes in topological order, and each edge as its chain of boxes (source,
    waypoints, target) with the target's entry point (a fraction of its width)."""

    boxes: list[_Box]
    edges: list[tuple[list[_Box], float]]


def _shape_text(value: Value) -> str:
    data = value.cached_data
    if isinstance(data, tuple):
        return "(" + ", ".join(f"{tuple(a.shape)}" for a in data) + ")"
    return f"{tuple(data.shape)} {data.dtype}"


def _describe(node: Value, names: dict[int, str]) -> tuple[list[str], str]:
    if node.op is not None:
        return [type(node.op).__name__, _shape_text(node)], "op"
    from .nn import Parameter

    if isinstance(node, Parameter):
        return [names.get(id(node), "Parameter"), _shape_text(node)], "parameter"
    if node.requires_grad:
        return ["leaf", _shape_text(node)], "leaf"
    return ["constant", _shape_text(node)], "constant"


def _roots(output: Any) -> list[Value]:
    roots = list(output) if isinstance(output, (tuple, list)) else [output]
    for i, root in enumerate(roots):
        if not isinstance(root, (Tensor, TensorTuple)):
            raise TypeError(f"viz.graph expects a Tensor or a tuple of Tensors, got "
                            f"{type(root).__name__} at position {i}")
        if not root.requires_grad:
            raise ValueError("viz.graph: the tensor does not require grad, so backward() has "
                             "no graph to walk; compute it from tensors with "
                             "requires_grad=True (Parameters), outside no_grad()")
    return roots


def layout(output: Any, names: dict[int, str] | None = None) -> Layout:
    """Boxes for every node reaching ``output``, placed in rows by topological depth."""
    order = find_topo_sort(_roots(output))
    boxes = {id(n): _Box(n, *_describe(n, names or {})) for n in order}
    _assign_depths(order, boxes)
    rows: dict[int, list[_Box]] = {}
    for box in boxes.values():
        rows.setdefault(box.depth, []).append(box)
    edges = [_connect(boxes[id(x)], boxes[id(n)], (k + 1) / (len(n.inputs) + 1), rows)
             for n in order for k, x in enumerate(n.inputs)]
    for row in rows.values():
        _pack(row)
    for _ in range(SWEEPS):  # fewer crossings: order rows by where their neighbours are
        for depth in sorted(rows)[1:]:
            _reorder(rows[depth], lambda b: [_center(u) for u in b.ups])
        for depth in sorted(rows, reverse=True)[1:]:
            _reorder(rows[depth], lambda b: [d.x + d.width * at for d, at in b.downs])
    _stack(rows)
    _center_rows(rows)
    return Layout([boxes[id(n)] for n in order], edges)


def _assign_depths(order: list[Value], boxes: dict[int, _Box]) -> None:
    """Ops one row below their deepest input; a leaf just above its first use."""
    for node in order:  # inputs come first, so their depth is final
        boxes[id(node)].depth = 1 + max((boxes[id(x)].depth for x in node.inputs), default=-1)
    first_use: dict[int, int] = {}
    for node in order:
        for x in node.inputs:
            first_use[id(x)] = min(first_use.get(id(x), 10**9), boxes[id(node)].depth)
    for node in order:
        if not node.inputs and id(node) in first_use:
            boxes[id(node)].depth = first_use[id(node)] - 1


def _connect(source: _Box, target: _Box, at: float, rows: dict[int, list[_Box]]
             ) -> tuple[list[_Box], float]:
    """The edge source -> target, through one waypoint per row it crosses."""
    chain = [source]
    for depth in range(source.depth + 1, target.depth):
        waypoint = _Box(None, [], "waypoint")
        waypoint.depth = depth
        rows.setdefault(depth, []).append(waypoint)
        chain.append(waypoint)
    chain.append(target)
    for upper, lower in zip(chain, chain[1:]):
        lower.ups.append(upper)
        upper.downs.append((lower, at if lower is target else 0.5))
    return chain, at


def _center(box: _Box) -> float:
    return box.x + box.width / 2


def _reorder(row: list[_Box], anchors: Any) -> None:
    """Sort one row by the mean x of each box's anchors (its own centre when it has none)."""
    def key(box: _Box) -> float:
        xs = anchors(box)
        return sum(xs) / len(xs) if xs else _center(box)

    row.sort(key=key)
    _pack(row)


def _pack(row: list[_Box]) -> None:
    """Place a row's boxes left to right in their current order."""
    x = MARGIN
    for box in row:
        box.x = x
        x += box.width + COL_GAP


def _stack(rows: dict[int, list[_Box]]) -> None:
    """Place the rows top to bottom by depth."""
    y = MARGIN
    for depth in sorted(rows):
        height = max((b.height for b in rows[depth] if b.node is not None), default=PAD)
        for box in rows[depth]:
            box.y = y
            if box.node is None:
                box.height = height  # a waypoint: the edge runs straight through the row
        y += height + ROW_GAP


def _center_rows(rows: dict[int, list[_Box]]) -> None:
    widest = max(r[-1].x + r[-1].width for r in rows.values())
    for row in rows.values():
        shift = (widest - (row[-1].x + row[-1].width)) / 2
        for box in row:
            box.x += shift


def to_svg(drawing: Layout) -> str:
    """The laid-out boxes and their edges as one SVG document."""
    boxes = drawing.boxes
    width = max(b.x + b.width for b in boxes) + MARGIN
    height = max(b.y + b.height for b in boxes) + MARGIN
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
             f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
             f'font-family="monospace" font-size="12">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" '
             'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
             '<path d="M 0 0 L 10 5 L 0 10 z" fill="#5f6368"/></marker></defs>',
             '<g class="edges" fill="none" stroke="#5f6368" stroke-width="1.2">']
    parts += [_edge(chain, at) for chain, at in drawing.edges]
    parts.append("</g>")
    parts += [_node(i, box) for i, box in enumerate(boxes)]
    parts.append("</svg>")
    return "\n".join(parts)


def _edge(chain: list[_Box], at: float) -> str:
    """One path: curves from row to row, straight down through each waypoint's row."""
    source, target = chain[0], chain[-1]
    x, y = _center(source), source.y + source.height
    path = [f"M {x:.1f} {y:.1f}"]
    for box in chain[1:]:
        x2 = box.x + box.width * at if box is target else _center(box)
        mid = (y + box.y) / 2
        path.append(f"C {x:.1f} {mid:.1f} {x2:.1f} {mid:.1f} {x2:.1f} {box.y:.1f}")
        x, y = x2, box.y + box.height
        if box is not target:
            path.append(f"L {x:.1f} {y:.1f}")
    return f'<path d="{" ".join(path)}" marker-end="url(#arrow)"/>'


def _node(i: int, box: _Box) -> str:
    fill, stroke, dash = STYLE[box.kind]
    dashes = f' stroke-dasharray="{dash}"' if dash else ""
    bold = ' font-weight="bold"'
    text = "".join(
        f'<text x="{box.x + box.width / 2:.1f}" y="{box.y + PAD / 2 + (k + 0.8) * LINE_HEIGHT:.1f}"'
        f' text-anchor="middle"{bold if k == 0 else ""}>{html.escape(line)}</text>'
        for k, line in enumerate(box.lines))
    return (f'<g class="node {box.kind}" id="node{i}"><title>{html.escape(" ".join(box.lines))}'
            f'</title><rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.width:.1f}" '
            f'height="{box.height:.1f}" rx="5" fill="{fill}" stroke="{stroke}"{dashes}/>'
            f"{text}</g>")


def _html(svg: str, title: str) -> str:
    return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}'
            f'</title></head>\n<body style="margin:0">\n{svg}\n</body></html>\n')


def graph(output: Any, path: str | os.PathLike[str] | None = None, *,
          model: Any = None) -> str:
    """Draw the graph behind ``output`` (a Tensor or a tuple of them) and return the SVG.

    ``path`` ending in ``.html`` gets a page embedding the SVG, any other path the SVG
    itself. ``model``: a Module whose Parameters are labelled with their paths."""
    names = {id(p): name for name, p in model.named_parameters()} if model is not None else {}
    svg = to_svg(layout(output, names))
    if path is not None:
        path = os.fspath(path)
        text = _html(svg, os.path.basename(path)) if path.endswith((".html", ".htm")) else svg
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    return svg


def training_step(model: Any, dataset: Any, batch_size: int,
                  path: str | os.PathLike[str] | None = None) -> str:
    """The graph of one training step's loss: ``model`` (in training mode) on the first
    ``batch_size`` samples of ``dataset``, through the softmax loss."""
    from .data import DataLoader
    from .nn import SoftmaxLoss

    x, y = next(iter(DataLoader(dataset, batch_size)))
    model.train()
    return graph(SoftmaxLoss()(model(x), y), path, model=model)
