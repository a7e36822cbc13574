"""Train a variational autoencoder on MNIST: a PyTorch program run by tinygrad_mnist.
The encoder maps an image to the mean and log-variance of a 20-number code; a code is
sampled from them with the reparameterisation trick (mean + std·noise, so gradients
reach both); the decoder maps it back to 784 pixel probabilities. The loss is the
pixels' binary cross-entropy plus the KL divergence of the code's distribution from a
standard normal, with Adam. It prints the test loss per image before training and after
each epoch, and with --samples FILE draws 64 digits decoded from random codes.

    python examples/mnist_vae.py --epochs 10 --samples samples.png
    python examples/mnist_vae.py --limit 2000 --epochs 2       # a quick look

Changed from the PyTorch form (examples/pytorch/mnist_vae.py): the imports, nothing
else. `--data` also takes the folder that $TINYGRAD_MNIST_DATA names.
"""
import argparse

import tinygrad_mnist as torch
import tinygrad_mnist.nn as nn
import tinygrad_mnist.nn.functional as F
import tinygrad_mnist.optim as optim
from tinygrad_mnist.utils.data import DataLoader, Subset
from tinygrad_mnist.vision import datasets, transforms
from tinygrad_mnist.vision.utils import save_image


LATENT = 20   # the size of the code each image is squeezed into


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(784, 400)
        self.mean = nn.Linear(400, LATENT)
        self.log_var = nn.Linear(400, LATENT)
        self.expand = nn.Linear(LATENT, 400)
        self.pixels = nn.Linear(400, 784)

    def encode(self, x):
        h = F.relu(self.hidden(x.view(-1, 784)))
        return self.mean(h), self.log_var(h)

    def decode(self, z):
        return torch.sigmoid(self.pixels(F.relu(self.expand(z))))

    def forward(self, x):
        mean, log_var = self.encode(x)
        std = torch.exp(0.5 * log_var)
        z = mean + std * torch.randn_like(std)  # a sample, differentiable in mean and std
        return self.decode(z), mean, log_var


def vae_loss(reconstruction, x, mean, log_var):
    """How badly the pixels come back, plus KL(q(z|x) || N(0, I)); summed over the batch."""
    pixels = F.binary_cross_entropy(reconstruction, x.view(-1, 784), reduction="sum")
    kl = -0.5 * torch.sum(1 + log_var - mean.pow(2) - log_var.exp())
    return pixels + kl


def train(model, device, loader, optimizer, epoch, log_interval):
    model.train()
    for batch_idx, (data, _) in enumerate(loader):
        data = data.to(device)
        optimizer.zero_grad()
        reconstruction, mean, log_var = model(data)
        loss = vae_loss(reconstruction, data, mean, log_var)
        loss.backward()
        optimizer.step()
        if batch_idx % log_interval == 0:
            seen = batch_idx * len(data)
            print(f"epoch {epoch} [{seen}/{len(loader.dataset)}] "
                  f"loss per image {loss.item() / len(data):.1f}")


def test(model, device, loader):
    model.eval()
    total = 0.0
    with torch.no_grad():
        for data, _ in loader:
            data = data.to(device)
            reconstruction, mean, log_var = model(data)
            total += vae_loss(reconstruction, data, mean, log_var).item()
    total /= len(loader.dataset)
    print(f"test: loss per image {total:.1f}")
    return total


def draw_samples(model, path, rows=8):
    """Decode rows x rows random codes into digits and save them as one picture."""
    with torch.no_grad():
        images = model.decode(torch.randn(rows * rows, LATENT)).view(-1, 1, 28, 28)
    save_image(images, path, nrow=rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description="A variational autoencoder for MNIST")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--log-interval", type=int, default=100, help="batches between log lines")
    parser.add_argument("--limit", type=int, default=0,
                        help="use only the first N training and test images (0: all)")
    parser.add_argument("--data", default="../data", help="the dataset folder")
    parser.add_argument("--samples", help="save 64 generated digits to this PNG file")
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    train_set = datasets.MNIST(args.data, train=True, download=True,
                               transform=transforms.ToTensor())
    test_set = datasets.MNIST(args.data, train=False, transform=transforms.ToTensor())
    if args.limit:
        train_set = Subset(train_set, range(args.limit))
        test_set = Subset(test_set, range(args.limit))
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True)
    test_loader = DataLoader(test_set, batch_size=1000)

    model = VAE().to(device)
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    losses = [test(model, device, test_loader)]
    for epoch in range(1, args.epochs + 1):
        train(model, device, train_loader, optimizer, epoch, args.log_interval)
        losses.append(test(model, device, test_loader))

    if args.samples:
        draw_samples(model, args.samples)
    return losses


if __name__ == "__main__":
    main()
