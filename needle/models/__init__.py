"""Models built from needle.nn: ready to train, as in the needle course."""

from .cnn import CNN
from .language import LanguageModel
from .mlp_resnet import MLPResNet, ResidualBlock
from .resnet9 import ConvBN, ResNet9

__all__ = ["CNN", "ConvBN", "LanguageModel", "MLPResNet", "ResNet9", "ResidualBlock"]
