"""Double backpropagation on MNIST, in PyTorch (the form examples/double_backprop.py
runs with tinygrad_mnist). Needs torch and torchvision."""
import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms


class MLP(nn.Module):
    """The 784-128-10 multilayer perceptron."""

    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(784, 128)
        self.out = nn.Linear(128, 10)

    def forward(self, x):
        return self.out(F.relu(self.hidden(x.view(-1, 784))))


def loss_and_input_gradient(model, data, target):
    """The cross-entropy and its gradient with respect to the input images, recorded
    (create_graph=True) so that a loss built from it can be backpropagated."""
    data = data.view(-1, 784).requires_grad_()
    loss = F.cross_entropy(model(data), target)
    (input_grad,) = torch.autograd.grad(loss, data, create_graph=True)
    return loss, input_grad


def train(model, device, loader, optimizer, epoch, penalty, log_interval):
    model.train()
    for batch_idx, (data, target) in enumerate(loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        loss, input_grad = loss_and_input_gradient(model, data, target)
        # Double backpropagation: penalise the mean over images of |d loss_i / d x_i|²
        # (the batch's mean loss scales each image's gradient by 1/N: hence the N).
        smoothness = input_grad.pow(2).sum() * len(data)
        total = loss + penalty * smoothness
        total.backward()
        optimizer.step()
        if batch_idx % log_interval == 0:
            seen = batch_idx * len(data)
            print(f"epoch {epoch} [{seen}/{len(loader.dataset)}] loss {loss.item():.4f} "
                  f"input-gradient norm² {smoothness.item():.4f}")


def test(model, device, loader):
    model.eval()
    correct, smoothness = 0, 0.0
    for data, target in loader:
        data, target = data.to(device), target.to(device)
        loss, input_grad = loss_and_input_gradient(model, data, target)
        smoothness += input_grad.pow(2).sum().item() * len(data) ** 2
        correct += (model(data).argmax(dim=1) == target).sum().item()
    n = len(loader.dataset)
    print(f"test: accuracy {correct / n:.1%}, mean input-gradient norm² {smoothness / n:.4f}")
    return correct / n, smoothness / n


def main(argv=None):
    parser = argparse.ArgumentParser(description="Double backpropagation on MNIST")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=0.05, help="SGD's learning rate")
    parser.add_argument("--penalty", type=float, default=0.1,
                        help="weight of the input-gradient norm² (0: plain training)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--log-interval", type=int, default=100, help="batches between log lines")
    parser.add_argument("--limit", type=int, default=0,
                        help="use only the first N training and test images (0: all)")
    parser.add_argument("--data", default="../data", help="the dataset folder")
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    transform = transforms.Compose([transforms.ToTensor(),
                                    transforms.Normalize((0.1307,), (0.3081,))])
    train_set = datasets.MNIST(args.data, train=True, download=True, transform=transform)
    test_set = datasets.MNIST(args.data, train=False, transform=transform)
    if args.limit:
        train_set = Subset(train_set, range(args.limit))
        test_set = Subset(test_set, range(args.limit))
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True)
    test_loader = DataLoader(test_set, batch_size=1000)

    model = MLP().to(device)
    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    result = (0.0, 0.0)
    for epoch in range(1, args.epochs + 1):
        train(model, device, train_loader, optimizer, epoch, args.penalty, args.log_interval)
        result = test(model, device, test_loader)
    return result


if __name__ == "__main__":
    main()
