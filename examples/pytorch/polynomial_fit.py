"""Fit y = sin(x) on [-π, π] with a cubic a + b·x + c·x² + d·x³, three ways: tensors and
autograd with updates by hand, then `nn` with updates by hand, then `nn` with `optim`.
The PyTorch form of examples/polynomial_fit.py (run it with PyTorch installed).

    python examples/pytorch/polynomial_fit.py --steps 2000
"""
import argparse
import math

import torch


def fit_with_autograd(x, y, steps, learning_rate):
    """Four coefficients that require grad, updated by hand inside no_grad()."""
    a, b, c, d = (torch.randn((), dtype=torch.float32, requires_grad=True) for _ in range(4))
    for t in range(steps):
        y_pred = a + b * x + c * x ** 2 + d * x ** 3
        loss = (y_pred - y).pow(2).sum()
        if t % 500 == 499:
            print(f"autograd, step {t + 1}: loss {loss.item():.2f}")
        loss.backward()
        with torch.no_grad():
            for coefficient in (a, b, c, d):
                coefficient -= learning_rate * coefficient.grad
                coefficient.grad = None
    return [a.item(), b.item(), c.item(), d.item()], loss.item()


def features(x):
    """The columns x, x², x³ (a + b·x + ... is then a linear layer)."""
    p = torch.tensor([1, 2, 3])
    return x.unsqueeze(-1).pow(p)


def coefficients(model):
    linear = model[0]
    return [linear.bias.item()] + [linear.weight[:, i].item() for i in range(3)]


def fit_with_nn(x, y, steps, learning_rate):
    """A Linear(3, 1) on the features, updated by hand inside no_grad()."""
    xx = features(x)
    model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0, 1))
    loss_fn = torch.nn.MSELoss(reduction="sum")
    for t in range(steps):
        loss = loss_fn(model(xx), y)
        if t % 500 == 499:
            print(f"nn, step {t + 1}: loss {loss.item():.2f}")
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for param in model.parameters():
                param -= learning_rate * param.grad
    return coefficients(model), loss.item()


def fit_with_optim(x, y, steps, learning_rate):
    """The same model, trained by RMSprop."""
    xx = features(x)
    model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0, 1))
    loss_fn = torch.nn.MSELoss(reduction="sum")
    optimizer = torch.optim.RMSprop(model.parameters(), lr=learning_rate)
    for t in range(steps):
        loss = loss_fn(model(xx), y)
        if t % 500 == 499:
            print(f"optim, step {t + 1}: loss {loss.item():.2f}")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return coefficients(model), loss.item()


def main(argv=None):
    parser = argparse.ArgumentParser(description="Fit sin(x) with a cubic polynomial")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--points", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    x = torch.linspace(-math.pi, math.pi, args.points)
    y = torch.sin(x)
    results = {}
    for name, fit, learning_rate in [("autograd", fit_with_autograd, 1e-6),
                                     ("nn", fit_with_nn, 1e-6),
                                     ("optim", fit_with_optim, 1e-3)]:
        (a, b, c, d), loss = fit(x, y, args.steps, learning_rate)
        print(f"{name}: y = {a:.4f} + {b:.4f} x + {c:.4f} x^2 + {d:.4f} x^3 (loss {loss:.2f})")
        results[name] = loss
    return results


if __name__ == "__main__":
    main()
