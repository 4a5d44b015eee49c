"""Neural-network layers: Modules with Parameters, PyTorch's shape and needle's contract."""

from .basic import (GELU, BatchNorm1d, Dropout, Flatten, Identity, LayerNorm1d, LeakyReLU, Linear,
                    ReLU, Residual, Sequential, Sigmoid, Tanh)
from .conv import (AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv, Conv2d, ConvTranspose2d,
                   Dropout2d, MaxPool2d)
from .loss import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, SoftmaxLoss
from .module import Module, Parameter
from .summary import summary

__all__ = ["AdaptiveAvgPool2d", "AvgPool2d", "BCEWithLogitsLoss", "BatchNorm1d", "BatchNorm2d",
           "Conv", "Conv2d", "ConvTranspose2d", "CrossEntropyLoss", "Dropout", "Dropout2d",
           "Flatten", "GELU", "Identity", "LayerNorm1d", "LeakyReLU", "Linear", "MSELoss",
           "MaxPool2d", "Module", "Parameter", "ReLU", "Residual", "Sequential", "Sigmoid",
           "SoftmaxLoss", "Tanh", "summary"]
