"""Draw the computation graph of a small network's loss, with the gradients' norms:
the picture in docs/engine.md (docs/graph.svg).

    python examples/draw_graph.py --out docs/graph --format svg
"""
import argparse

import tinygrad_mnist as tg
import tinygrad_mnist.nn.functional as F
from tinygrad_mnist import nn
from tinygrad_mnist.viz import draw_graph, render_graph


def main(argv=None):
    parser = argparse.ArgumentParser(description="Draw a small network's graph")
    parser.add_argument("--out", default="docs/graph", help="file name without extension")
    parser.add_argument("--format", default="svg", choices=["svg", "png", "pdf"])
    args = parser.parse_args(argv)

    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    x, y = tg.randn(5, 4), tg.tensor([0, 1, 1, 0, 1])
    loss = F.cross_entropy(model(x), y)
    loss.backward(retain_graph=True)  # keep the graph, to draw it with the gradients
    names = {"x (5 images of 4 pixels)": x, **dict(model.named_parameters())}
    path = render_graph(draw_graph(loss, params=names), args.out, args.format)
    print(path)
    return path


if __name__ == "__main__":
    main()
