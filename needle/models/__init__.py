"""Models built from needle.nn: ready to train, as in the needle course."""

from .mlp_resnet import MLPResNet, ResidualBlock

__all__ = ["MLPResNet", "ResidualBlock"]
