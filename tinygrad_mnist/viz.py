"""Pictures of computation graphs: `draw_graph(tensor)` returns a graphviz `Digraph` of
the ops and tensors that produced `tensor`.

    loss = F.cross_entropy(model(x), y)
    graph = draw_graph(loss, params=dict(model.named_parameters()))
    loss.backward(retain_graph=True)          # keep the graph to draw gradients too
    graph = draw_graph(loss, params=dict(model.named_parameters()))
    graph.render("graph", format="svg")      # or display it in a notebook

Every tensor is a box with its shape and dtype (and its name, when `params` names
it); a tensor that requires a gradient is drawn in colour, one with a gradient (a leaf,
or a tensor that called `retain_grad()` before backward) shows the gradient's L2 norm. Every op is an ellipse with its Function's name. Edges run from
inputs to ops to outputs.

`backward()` frees the graph (as in PyTorch), so draw before it, or call
`backward(retain_graph=True)` to draw after it with the gradients' norms. Building the
`Digraph` needs the `graphviz` Python package (`pip install tinygrad_mnist[learn]`);
rendering it needs Graphviz's `dot` program (`render_graph` says clearly when it is
missing).
"""
from __future__ import annotations

import os
import shutil
from typing import Any, Dict, List, Mapping, Optional

import numpy as np

from .autograd import Function
from .tensor import Tensor

GRADIENT_FILL = "#cfe2ff"   # tensors that require a gradient
LEAF_FILL = "#ffe8a3"       # leaves that require a gradient (what backward fills)
OP_FILL = "#eeeeee"


def _graphviz() -> Any:
    try:
        import graphviz
    except ImportError:
        raise ImportError("draw_graph needs the graphviz Python package: pip install "
                          "graphviz (or tinygrad_mnist[learn])") from None
    return graphviz


def _tensor_label(t: Tensor, name: Optional[str]) -> str:
    shape = "×".join(str(n) for n in t.shape) or "scalar"
    lines = ([name] if name else []) + [f"{shape} {t.dtype}"]
    if t.grad is not None:
        lines.append(f"‖grad‖ = {float(np.linalg.norm(t.grad.data)):.4g}")
    return "\\n".join(lines)                      # DOT's line break


def _op_label(ctx: Function) -> str:
    return type(ctx).__name__


def graph_nodes(root: Tensor) -> List[Tensor]:
    """Every tensor of the graph that produced `root`, outputs before their inputs;
    a RuntimeError if `backward()` has freed that graph."""
    order, seen, stack = [], set(), [root]
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        order.append(t)
        ctx = t.grad_fn
        if ctx is not None and not ctx.parents and ctx.needs_input_grad == ():
            raise RuntimeError("draw_graph: the graph of this tensor was freed by "
                               "backward(); draw it before backward(), or call "
                               "backward(retain_graph=True)")
        if ctx is not None:
            stack.extend(reversed(ctx.parents))
    return order


def draw_graph(root: Tensor, params: Optional[Mapping[str, Tensor]] = None,
               name: str = "graph", rankdir: str = "TB") -> Any:
    """A `graphviz.Digraph` of the graph that produced `root` (see the module
    docstring). `params` maps names to tensors to label (e.g.
    `dict(model.named_parameters())`); `rankdir` "TB" draws inputs at the top, "LR"
    on the left."""
    graphviz = _graphviz()
    names: Dict[int, str] = {id(t): n for n, t in (params or {}).items()}
    keys: Dict[int, str] = {}

    def key(obj: Any, prefix: str) -> str:  # t0, t1, op2, ...: the same picture every run
        return keys.setdefault(id(obj), f"{prefix}{len(keys)}")

    graph = graphviz.Digraph(name, graph_attr={"rankdir": rankdir},
                             node_attr={"fontname": "Helvetica", "fontsize": "11"})
    for t in graph_nodes(root):
        fill = (LEAF_FILL if t.is_leaf else GRADIENT_FILL) if t.requires_grad else "white"
        graph.node(key(t, "t"), _tensor_label(t, names.get(id(t))), shape="box",
                   style="filled,rounded", fillcolor=fill,
                   penwidth="2" if t is root else "1")
        ctx = t.grad_fn
        if ctx is None:
            continue
        graph.node(key(ctx, "op"), _op_label(ctx), shape="ellipse", style="filled",
                   fillcolor=OP_FILL)
        graph.edge(key(ctx, "op"), key(t, "t"))
        for parent in ctx.parents:
            graph.edge(key(parent, "t"), key(ctx, "op"))
    return graph


def render_graph(graph: Any, path: "os.PathLike[str] | str", format: str = "svg") -> str:
    """Write `graph` (from `draw_graph`) to `path` + "." + `format` (svg, png, pdf)
    and return that file name; a RuntimeError in one line if `dot` is missing."""
    if shutil.which("dot") is None:
        raise RuntimeError("render_graph: Graphviz's `dot` program is not on PATH; install "
                           "Graphviz (e.g. apt-get install graphviz) or use graph.source")
    return graph.render(os.fspath(path), format=format, cleanup=True)
