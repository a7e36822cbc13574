"""End to end: an MLP defined by subclassing Module fits a small synthetic
classification problem with every optimizer."""
import numpy as np
import pytest

import tinygrad_mnist as tg
from tinygrad_mnist import nn, optim
from tinygrad_mnist.nn import functional as F


def spirals(n_per_class=40, classes=3, seed=0):
    """Interleaved 2-D spirals: not linearly separable."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for c in range(classes):
        r = np.linspace(0.1, 1.0, n_per_class)
        angle = np.linspace(c * 2 * np.pi / classes, c * 2 * np.pi / classes + 3.0,
                            n_per_class) + rng.normal(0, 0.05, n_per_class)
        xs.append(np.stack([r * np.sin(angle), r * np.cos(angle)], axis=1))
        ys.append(np.full(n_per_class, c))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys)


class MLP(nn.Module):
    def __init__(self, hidden=32, classes=3):
        super().__init__()
        self.fc1 = nn.Linear(2, hidden)
        self.act1 = nn.Tanh()
        self.fc2 = nn.Linear(hidden, hidden)
        self.act2 = nn.ReLU()
        self.out = nn.Linear(hidden, classes)

    def forward(self, x):
        return self.out(self.act2(self.fc2(self.act1(self.fc1(x)))))


OPTIMIZERS = {
    "SGD": lambda p: optim.SGD(p, lr=0.5),
    "SGD-momentum": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-5),
    "SGD-nesterov": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
    "RMSprop": lambda p: optim.RMSprop(p, lr=0.005),
    "RMSprop-centered": lambda p: optim.RMSprop(p, lr=0.003, centered=True, momentum=0.5),
    "Adam": lambda p: optim.Adam(p, lr=0.01),
    "Adam-amsgrad": lambda p: optim.Adam(p, lr=0.01, amsgrad=True),
    "AdamW": lambda p: optim.AdamW(p, lr=0.01),
    "Adagrad": lambda p: optim.Adagrad(p, lr=0.1),
}


def fit_accuracy(model, opt, x, y, steps=300, penalty=None, scheduler=None, clip=None):
    """Full-batch training for `steps` steps; then the training accuracy in eval mode."""
    inputs = tg.Tensor(x)
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(inputs), y)
        if penalty is not None:
            loss = loss + penalty(model)
        loss.backward()
        if clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        if scheduler is not None:
            scheduler.step()
    model.eval()
    with tg.no_grad():
        return (model(inputs).argmax(1) == y).float().mean()


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_mlp_fits_spirals(name):
    x, y = spirals()
    nn.init.manual_seed(0)
    model = MLP()
    accuracy = fit_accuracy(model, OPTIMIZERS[name](model.parameters()), x, y)
    assert accuracy >= 0.99, f"{name}: training accuracy {accuracy:.3f}"
    assert all(p.dtype == np.float32 for p in model.parameters())


def test_regularised_model_with_dropout_batchnorm_l1_and_schedule_still_fits():
    x, y = spirals(seed=1)
    nn.init.manual_seed(1)
    model = nn.Sequential(nn.Linear(2, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.1),
                          nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 3))
    opt = optim.AdamW(model.parameters(), lr=0.01, weight_decay=1e-4)
    scheduler = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.03, total_steps=300)
    accuracy = fit_accuracy(model, opt, x, y, scheduler=scheduler, clip=5.0,
                            penalty=lambda m: 1e-5 * nn.utils.l1_penalty(m.parameters()))
    assert accuracy >= 0.99, f"training accuracy {accuracy:.3f}"
