"""ndl.viz.graph: valid SVG/HTML, one box per graph node, edges downward, clear errors."""

import xml.etree.ElementTree as ET

import numpy as np
import pytest

import needle as ndl
from needle import __main__ as cli
from needle import nn, viz

SVG = "{http://www.w3.org/2000/svg}"


def _nodes(root):
    return [g for g in root.iter(f"{SVG}g") if g.get("class", "").startswith("node")]


def _texts(group):
    return [t.text for t in group.iter(f"{SVG}text")]


def test_a_known_small_graph_has_one_box_per_node_and_one_edge_per_input(tmp_path):
    x = ndl.Tensor(np.ones((2, 3)), dtype="float32")          # leaf that requires grad
    w = nn.Parameter(np.ones((3, 4), dtype=np.float32))       # a Parameter
    c = ndl.Tensor(np.ones((2, 4), np.float32), requires_grad=False)  # a constant
    loss = ((x @ w).relu() * c).sum()                          # MatMul, ReLU, EWiseMul, Sum
    viz.graph(loss, tmp_path / "g.svg")
    root = ET.parse(tmp_path / "g.svg").getroot()
    nodes = _nodes(root)
    assert len(nodes) == 7
    kinds = sorted(g.get("class") for g in nodes)
    assert kinds == ["node constant", "node leaf", "node op", "node op", "node op", "node op",
                     "node parameter"]
    labels = {tuple(_texts(g)) for g in nodes}
    assert ("MatMul", "(2, 4) float32") in labels and ("Summation", "() float32") in labels
    assert ("Parameter", "(3, 4) float32") in labels and ("leaf", "(2, 3) float32") in labels
    edges = list(root.find(f"{SVG}g[@class='edges']"))
    assert len(edges) == 6  # x, w -> MatMul -> ReLU; ReLU, c -> Mul -> Sum


def test_parameters_are_named_from_the_model_and_edges_point_down():
    np.random.seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3))
    x = ndl.Tensor(np.random.randn(2, 4).astype("float32"), requires_grad=False)
    loss = nn.SoftmaxLoss()(model(x), ndl.Tensor(np.array([0, 2])))
    root = ET.fromstring(viz.graph(loss, model=model))
    names = {_texts(g)[0] for g in _nodes(root) if g.get("class") == "node parameter"}
    assert names == {name for name, _ in model.named_parameters()}
    drawing = viz.layout(loss)
    index = {id(b.node): b for b in drawing.boxes}
    for box in drawing.boxes:
        for inp in box.node.inputs:
            assert index[id(inp)].y + index[id(inp)].height < box.y
    placed = drawing.boxes + [w for chain, _ in drawing.edges for w in chain[1:-1]]
    for a in placed:  # nothing overlaps within a row, waypoints of long edges included
        for b in placed:
            if a is not b and a.y == b.y:
                assert a.x + a.width <= b.x or b.x + b.width <= a.x


def test_html_embeds_the_svg(tmp_path):
    x = ndl.Tensor([1.0, 2.0])
    svg = viz.graph((x * 2).sum(), tmp_path / "g.html")
    page = (tmp_path / "g.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and svg in page


def test_a_tuple_of_outputs_draws_both_graphs():
    x = ndl.Tensor([1.0, 2.0])
    root = ET.fromstring(viz.graph((x * 2, x.exp())))
    assert len(_nodes(root)) == 3


def test_a_tensor_that_requires_no_grad_is_a_clear_error():
    with pytest.raises(ValueError, match="does not require grad, so backward\\(\\) has no graph"):
        viz.graph(ndl.Tensor([1.0], requires_grad=False) * 2)
    with ndl.no_grad():
        y = ndl.Tensor([1.0]) * 2
    with pytest.raises(ValueError, match="no_grad"):
        viz.graph(y)
    with pytest.raises(TypeError, match="expects a Tensor"):
        viz.graph(np.ones(2))


def test_the_graph_command_draws_an_mlp_resnet_step(tmp_path, capsys):
    out = tmp_path / "graph.svg"
    cli.main(["graph", "--model", "mlp_resnet", "--dataset", "digits", "--out", str(out)])
    root = ET.parse(out).getroot()
    nodes = _nodes(root)
    labels = [_texts(g)[0] for g in nodes]
    if ndl.is_reference_mode():  # the compositions: log-softmax and a product per layer
        assert labels.count("LogSoftmax") == 1 and "MatMul" in labels
    else:  # the fused primitives, one box each
        assert labels.count("SoftmaxCrossEntropy") == 1 and "Linear" in labels
    assert "modules.1.weight" in labels
    assert f"wrote {out}: {len(nodes)} nodes" in capsys.readouterr().out
