"""Neural-network layers: Modules with Parameters, PyTorch's shape and needle's contract."""

from .attention import (AttentionLayer, MultiHeadAttention, Softmax, Transformer,
                        TransformerLayer)
from .basic import (BatchNorm1d, Dropout, Flatten, Identity, LayerNorm1d, Linear, ReLU, Residual,
                    Sequential, Sigmoid, SoftmaxLoss, Tanh)
from .module import Module, Parameter
from .sequence import GRU, LSTM, RNN, Embedding, GRUCell, LSTMCell, RNNCell

__all__ = ["GRU", "LSTM", "RNN", "AttentionLayer", "BatchNorm1d", "Dropout", "Embedding",
           "Flatten", "GRUCell", "Identity", "LSTMCell", "LayerNorm1d", "Linear", "Module",
           "MultiHeadAttention", "Parameter", "RNNCell", "ReLU", "Residual", "Sequential",
           "Sigmoid", "Softmax", "SoftmaxLoss", "Tanh", "Transformer", "TransformerLayer"]
