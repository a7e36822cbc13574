"""Graph pictures: the nodes and edges `draw_graph` gives for small known graphs, the
freed-graph error, gradient norms after backward(retain_graph=True), and rendering."""
import re
import shutil

import numpy as np
import pytest

pytest.importorskip("graphviz")

import tinygrad_mnist as tg  # noqa: E402
from tinygrad_mnist import nn  # noqa: E402
from tinygrad_mnist.viz import draw_graph, graph_nodes, render_graph  # noqa: E402


def parse(graph):
    """(labels of the nodes by id, set of (tail id, head id) edges) of a Digraph."""
    nodes, edges = {}, set()
    for line in graph.body:
        edge = re.match(r"\s*(\S+) -> (\S+)", line)
        if edge:
            edges.add(edge.groups())
            continue
        node = re.match(r'\s*(\S+) \[label="?(.*?)"? (?:fillcolor|shape|style)', line)
        if node:
            nodes[node.group(1)] = node.group(2).replace("\\n", "\n")
    return nodes, edges


def test_a_small_graph_has_one_node_per_op_and_tensor_and_its_edges():
    a = tg.tensor([1.0, 2.0], requires_grad=True)
    b = tg.tensor([3.0, 4.0])
    y = (a * b + a).sum()
    nodes, edges = parse(draw_graph(y, params={"a": a, "b": b}))
    ops = sorted(label for key, label in nodes.items() if key.startswith("op"))
    tensors = [key for key in nodes if key.startswith("t")]
    assert ops == ["Add", "Mul", "Sum"]
    assert len(tensors) == 5                      # a, b, a*b, a*b + a, y
    assert len(edges) == 8       # a,b -> Mul -> ab; ab,a -> Add -> s; s -> Sum -> y
    by_label = {label.split("\n")[0]: key for key, label in nodes.items()}
    mul = next(k for k, v in nodes.items() if v == "Mul")
    add = next(k for k, v in nodes.items() if v == "Add")
    assert (by_label["a"], mul) in edges and (by_label["b"], mul) in edges
    assert (by_label["a"], add) in edges           # a feeds two ops
    assert "2 float32" in nodes[by_label["a"]] and nodes["t0"] == "scalar float32"  # y
    assert draw_graph(y).source == draw_graph(y).source   # node names do not vary


def test_colours_mark_what_requires_a_gradient():
    a = tg.tensor([1.0], requires_grad=True)
    c = tg.tensor([2.0])
    source = draw_graph((a * c).sum()).source
    assert source.count("#ffe8a3") == 1           # the leaf a
    assert source.count("#cfe2ff") == 2           # a * c and the sum


def test_gradient_norms_show_after_backward_with_retain_graph():
    model = nn.Linear(3, 2)
    loss = model(tg.ones(4, 3)).sum()
    before = draw_graph(loss, params=dict(model.named_parameters())).source
    assert "grad" not in before and "weight" in before and "2×3 float32" in before
    loss.backward(retain_graph=True)
    after = draw_graph(loss, params=dict(model.named_parameters())).source
    norm = float(np.linalg.norm(model.weight.grad.numpy()))
    assert f"‖grad‖ = {norm:.4g}" in after


def test_a_freed_graph_is_named_in_one_line():
    x = tg.tensor([1.0], requires_grad=True)
    loss = (x * 2).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True") as error:
        draw_graph(loss)
    assert "\n" not in str(error.value)


def test_a_leaf_alone_is_one_node():
    x = tg.tensor([1.0], requires_grad=True)
    assert graph_nodes(x) == [x]
    nodes, edges = parse(draw_graph(x))
    assert len(nodes) == 1 and not edges


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_renders_to_svg_and_png(tmp_path, fmt):
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    path = render_graph(draw_graph((x * x).sum()), tmp_path / "graph", fmt)
    data = open(path, "rb").read()
    assert data.startswith(b"<?xml" if fmt == "svg" else b"\x89PNG")


def test_rendering_without_dot_says_so(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    x = tg.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="`dot` program is not on PATH") as error:
        render_graph(draw_graph(x * 2), tmp_path / "g")
    assert "\n" not in str(error.value)
