"""The primitive differentiable ops, one `Function` each, grouped by concept: each
states its local gradient beside its forward. `ops.Add`, `ops.Conv2d`, ... name them
all; the Tensor methods (`mixin/`) and `nn.functional` apply them.

- `elementwise`: `Add` `Sub` `Mul` `Div` `Neg` `Pow` `Exp` `Log` `Sqrt` `Tanh` `Sigmoid`
  `ReLU` `LeakyReLU` `Clip` `Cast` `Sin` `Cos` `Where` `Extremum` `Remainder` `Erf`
  `Erfc` `Log1p` `Rounding`
- `reduce`: `Sum` `Max` `Cumsum` `Prod` `ExclusiveProducts` `LogSoftmax`
- `movement`: `Reshape` `Permute` `GetItem` `IndexAdd` `Concatenate` `Expand`
- `linalg`: `MatMul` `Linear` `Einsum`
- `convolution`: `Conv2d` `Im2Col` `Col2Im`; `pooling`: `MaxPool2d` `MaxPoolScatter`
  `MaxPoolGather` `AvgPool2d` `AvgPoolSpread`
- `normalization`: `BatchNorm`
- `losses`: `CrossEntropy` `BinaryCrossEntropy` `BinaryCrossEntropyWithLogits`
"""
from .convolution import Col2Im, Conv2d, Im2Col
from .elementwise import (Add, Cast, Clip, Cos, Div, Erf, Erfc, Exp, Extremum, LeakyReLU, Log, Log1p,
                          Mul, Neg, Pow, ReLU, Remainder, Rounding, Sigmoid, Sin, Sqrt, Sub,
                          Tanh, Where)
from .linalg import Einsum, Linear, MatMul
from .losses import BinaryCrossEntropy, BinaryCrossEntropyWithLogits, CrossEntropy
from .movement import Concatenate, Expand, GetItem, IndexAdd, Permute, Reshape
from .normalization import BatchNorm
from .pooling import AvgPool2d, AvgPoolSpread, MaxPool2d, MaxPoolGather, MaxPoolScatter
from .reduce import Cumsum, ExclusiveProducts, LogSoftmax, Max, Prod, Sum

__all__ = ["Add", "Sub", "Mul", "Div", "Neg", "Pow", "Exp", "Log", "Sqrt", "Tanh", "Sigmoid",
           "ReLU", "LeakyReLU", "Clip", "Cast", "Sin", "Cos", "Where", "Extremum",
           "Remainder", "Erf", "Erfc", "Log1p", "Rounding", "Sum", "Max", "Cumsum", "Prod",
           "ExclusiveProducts",
           "LogSoftmax", "Reshape", "Permute", "GetItem", "IndexAdd", "Concatenate", "Expand",
           "MatMul", "Linear", "Einsum", "Conv2d", "Im2Col", "Col2Im", "MaxPool2d",
           "MaxPoolScatter", "MaxPoolGather", "AvgPool2d", "AvgPoolSpread", "BatchNorm",
           "CrossEntropy", "BinaryCrossEntropy", "BinaryCrossEntropyWithLogits"]
