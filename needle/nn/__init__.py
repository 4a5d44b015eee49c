"""Neural-network layers: Modules with Parameters, PyTorch's shape and needle's contract."""

from .basic import (BatchNorm1d, Dropout, Flatten, Identity, LayerNorm1d, Linear, ReLU, Residual,
                    Sequential, Sigmoid, SoftmaxLoss, Tanh)
from .module import Module, Parameter
from .sequence import GRU, LSTM, RNN, Embedding, GRUCell, LSTMCell, RNNCell

__all__ = ["GRU", "LSTM", "RNN", "BatchNorm1d", "Dropout", "Embedding", "Flatten", "GRUCell",
           "Identity", "LSTMCell", "LayerNorm1d", "Linear", "Module", "Parameter", "RNNCell",
           "ReLU", "Residual", "Sequential", "Sigmoid", "SoftmaxLoss", "Tanh"]
