"""Neural-network layers: Modules with Parameters, PyTorch's shape and needle's contract."""

from .attention import (AttentionLayer, MultiHeadAttention, Softmax, Transformer,
                        TransformerLayer)
from .basic import (GELU, BatchNorm1d, Dropout, Flatten, Identity, LayerNorm1d, LeakyReLU, Linear,
                    ReLU, Residual, Sequential, Sigmoid, Tanh)
from .loss import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, SoftmaxLoss
from .module import Module, Parameter
from .sequence import GRU, LSTM, RNN, Embedding, GRUCell, LSTMCell, RNNCell
from .summary import summary

__all__ = ["BCEWithLogitsLoss", "BatchNorm1d", "CrossEntropyLoss", "Dropout", "Flatten", "GELU",
           "Identity", "LayerNorm1d", "LeakyReLU", "Linear", "MSELoss", "Module", "Parameter",
           "ReLU", "Residual", "Sequential", "Sigmoid", "SoftmaxLoss", "Tanh", "summary"]
__all__ += ["AttentionLayer", "Embedding", "GRU", "GRUCell", "LSTM", "LSTMCell",
            "MultiHeadAttention", "RNN", "RNNCell", "Softmax", "Transformer", "TransformerLayer"]
