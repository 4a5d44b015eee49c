"""Models built from needle.nn: ready to train, as in the needle course."""

from .cnn import CNN
from .fc_net import FullyConnectedNet, TwoLayerNet
from .language import LanguageModel
from .mlp_resnet import MLPResNet, ResidualBlock
from .resnet9 import ConvBN, ResNet9

__all__ = ["CNN", "ConvBN", "FullyConnectedNet", "LanguageModel", "MLPResNet", "ResNet9",
           "ResidualBlock", "TwoLayerNet"]
