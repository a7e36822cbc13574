"""Train a small convolutional network on MNIST: a PyTorch program run by
tinygrad_mnist. Two convolutions, max pooling, dropout, `log_softmax` + `nll_loss`,
Adadelta with a StepLR schedule, a `train()`/`test()` loop over `DataLoader`s of
`datasets.MNIST`, and the state dict saved at the end.

    python examples/mnist_cnn.py --epochs 3 --save-model
    python examples/mnist_cnn.py --limit 2000 --epochs 1     # a quick look

Changed from the PyTorch form (examples/pytorch/mnist_cnn.py): the imports, nothing
else. `datasets.MNIST(root)` reads the four MNIST files from `root` (or from
root/MNIST/raw, torchvision's layout, downloading them there with download=True);
`--data` also takes the folder that $TINYGRAD_MNIST_DATA names.
"""
import argparse

import tinygrad_mnist as torch
import tinygrad_mnist.nn as nn
import tinygrad_mnist.nn.functional as F
import tinygrad_mnist.optim as optim
from tinygrad_mnist.optim.lr_scheduler import StepLR
from tinygrad_mnist.utils.data import DataLoader, Subset
from tinygrad_mnist.vision import datasets, transforms


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        return F.log_softmax(self.fc2(x), dim=1)


def train(model, device, loader, optimizer, epoch, log_interval):
    model.train()
    for batch_idx, (data, target) in enumerate(loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        loss = F.nll_loss(model(data), target)
        loss.backward()
        optimizer.step()
        if batch_idx % log_interval == 0:
            seen = batch_idx * len(data)
            print(f"epoch {epoch} [{seen}/{len(loader.dataset)}] loss {loss.item():.4f}")


def test(model, device, loader):
    model.eval()
    total_loss, correct = 0.0, 0
    with torch.no_grad():
        for data, target in loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            total_loss += F.nll_loss(output, target, reduction="sum").item()
            pred = output.argmax(dim=1, keepdim=True)  # the most likely class
            correct += pred.eq(target.view_as(pred)).sum().item()
    n = len(loader.dataset)
    print(f"test: average loss {total_loss / n:.4f}, "
          f"accuracy {correct}/{n} ({100.0 * correct / n:.1f} %)")
    return correct / n


def main(argv=None):
    parser = argparse.ArgumentParser(description="A convolutional network for MNIST")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--test-batch-size", type=int, default=250)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1.0, help="Adadelta's learning rate")
    parser.add_argument("--gamma", type=float, default=0.7, help="learning-rate decay per epoch")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--log-interval", type=int, default=50, help="batches between log lines")
    parser.add_argument("--limit", type=int, default=0,
                        help="use only the first N training and test images (0: all)")
    parser.add_argument("--data", default="../data", help="the dataset folder")
    parser.add_argument("--save-model", action="store_true", help="write mnist_cnn.pt")
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
    test_loader = DataLoader(test_set, batch_size=args.test_batch_size)

    model = Net().to(device)
    optimizer = optim.Adadelta(model.parameters(), lr=args.lr)
    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)
    accuracy = 0.0
    for epoch in range(1, args.epochs + 1):
        train(model, device, train_loader, optimizer, epoch, args.log_interval)
        accuracy = test(model, device, test_loader)
        scheduler.step()

    if args.save_model:
        torch.save(model.state_dict(), "mnist_cnn.pt")
    return accuracy


if __name__ == "__main__":
    main()
