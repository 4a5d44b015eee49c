"""Models built from needle.nn: ready to train, as in the needle course."""

from .cnn import CNN
from .mlp_resnet import MLPResNet, ResidualBlock
from .resnet9 import ConvBN, ResNet9

__all__ = ["CNN", "ConvBN", "MLPResNet", "ResNet9", "ResidualBlock"]
