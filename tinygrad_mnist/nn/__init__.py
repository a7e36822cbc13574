"""Neural-network building blocks with a PyTorch-shaped API.

`Module` (with `Parameter`, buffers and `state_dict`), containers, layers (convolutional
ones too: `Conv2d`, `MaxPool2d`, `AvgPool2d`, `BatchNorm2d`), losses,
`functional` (F), `init` and `utils` (gradient clipping, L1 penalty), with PyTorch's
names and signatures.
"""
from . import functional, init, utils
from .containers import ModuleList, Sequential
from .conv import Conv2d
from .layers import (ELU, GELU, Dropout, Dropout2d, Flatten, Identity, LeakyReLU, Linear,
                     LogSoftmax, ReLU, SiLU, Sigmoid, Softmax, Softplus, Tanh)
from .losses import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss,
                     NLLLoss)
from .module import IncompatibleKeys, Module, Parameter, RemovableHandle, StateDictError
from .normalization import BatchNorm1d, BatchNorm2d, LayerNorm
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d

__all__ = ["Module", "Parameter", "StateDictError", "IncompatibleKeys", "RemovableHandle",
           "Sequential",
           "ModuleList", "Linear", "Identity", "ReLU", "LeakyReLU", "Tanh", "Sigmoid",
           "GELU", "SiLU", "ELU", "Softplus", "Softmax", "LogSoftmax", "Flatten", "Dropout",
           "Dropout2d", "BatchNorm1d", "LayerNorm", "Conv2d", "MaxPool2d", "AvgPool2d",
           "AdaptiveAvgPool2d", "BatchNorm2d",
           "CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss", "BCELoss", "BCEWithLogitsLoss",
           "functional", "init", "utils"]
