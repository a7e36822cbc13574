"""Optimizers (SGD, RMSprop, Adam, AdamW, Adagrad, Adadelta) following PyTorch's
documented update rules, and learning-rate schedulers (`optim.lr_scheduler`)."""
from . import lr_scheduler
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "RMSprop", "Adam", "AdamW", "Adagrad", "Adadelta",
           "lr_scheduler"]
