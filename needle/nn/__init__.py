"""Neural-network layers: Modules with Parameters, PyTorch's shape and needle's contract."""

from .basic import (BatchNorm1d, Dropout, Flatten, Identity, LayerNorm1d, Linear, ReLU, Residual,
                    Sequential, Sigmoid, SoftmaxLoss, Tanh)
from .module import Module, Parameter

__all__ = ["BatchNorm1d", "Dropout", "Flatten", "Identity", "LayerNorm1d", "Linear", "Module",
           "Parameter", "ReLU", "Residual", "Sequential", "Sigmoid", "SoftmaxLoss", "Tanh"]
