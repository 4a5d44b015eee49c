"""Neural-network layers: Modules with Parameters, PyTorch's shape and needle's contract."""

from .basic import (BatchNorm1d, Dropout, Flatten, Identity, LayerNorm1d, Linear, ReLU, Residual,
                    Sequential, Sigmoid, SoftmaxLoss, Tanh)
from .conv import (AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv, Conv2d, ConvTranspose2d,
                   Dropout2d, MaxPool2d)
from .module import Module, Parameter

__all__ = ["AdaptiveAvgPool2d", "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Conv", "Conv2d",
           "ConvTranspose2d", "Dropout", "Dropout2d", "Flatten", "Identity", "LayerNorm1d",
           "Linear", "MaxPool2d", "Module", "Parameter", "ReLU", "Residual", "Sequential",
           "Sigmoid", "SoftmaxLoss", "Tanh"]
