"""Neural-network layers: Modules with Parameters, PyTorch's shape and needle's contract."""

from .attention import (AttentionLayer, MultiHeadAttention, Softmax, Transformer,
                        TransformerLayer)
from .basic import (GELU, BatchNorm1d, Dropout, Flatten, Identity, LayerNorm1d, LeakyReLU, Linear,
                    ReLU, Residual, Sequential, Sigmoid, Tanh)
from .containers import ModuleDict, ModuleList
from .conv import (AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv, Conv2d, ConvTranspose2d,
                   Dropout2d, MaxPool2d)
from . import init
from .conv_bn import ConvBatchNorm2d
from . import linear_bn  # registers its Sequential fusion
from .hooks import Hook, Hooks, RemovableHandle, check_finite
from .label_smoothing import LabelSmoothingCrossEntropy
from .loss import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, SoftmaxLoss
from .module import Module, Parameter
from .norms import (GeneralRelu, GroupNorm, InstanceNorm, InstanceNorm1d, InstanceNorm2d,
                    LayerNorm, PReLU)
from .sequence import GRU, LSTM, RNN, Embedding, GRUCell, LSTMCell, RNNCell
from .summary import summary
from . import functional, utils
from .from_torch import copy_from_torch
from .sync_batchnorm import SyncBatchNorm

__all__ = ["AdaptiveAvgPool2d", "AttentionLayer", "AvgPool2d", "BCEWithLogitsLoss",
           "BatchNorm1d", "BatchNorm2d", "Conv", "Conv2d", "ConvBatchNorm2d", "ConvTranspose2d", "CrossEntropyLoss",
           "Dropout", "Dropout2d", "Embedding", "Flatten", "GELU", "GRU", "GRUCell", "Identity",
           "LSTM", "LSTMCell", "LayerNorm1d", "LeakyReLU", "Linear", "MSELoss", "MaxPool2d",
           "Module", "MultiHeadAttention", "Parameter", "RNN", "RNNCell", "ReLU", "Residual",
           "Sequential", "Sigmoid", "Softmax", "SoftmaxLoss", "SyncBatchNorm", "Tanh",
           "Transformer", "TransformerLayer", "summary", "utils"]
__all__ += ["ModuleDict", "ModuleList", "copy_from_torch", "functional"]
__all__ += ["GeneralRelu", "GroupNorm", "InstanceNorm", "InstanceNorm1d", "InstanceNorm2d",
            "LabelSmoothingCrossEntropy", "LayerNorm", "PReLU", "init"]
__all__ += ["Hook", "Hooks", "RemovableHandle", "check_finite"]
