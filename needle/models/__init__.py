"""Models built from needle.nn: ready to train, as in the needle course."""

from .language import LanguageModel
from .mlp_resnet import MLPResNet, ResidualBlock

__all__ = ["LanguageModel", "MLPResNet", "ResidualBlock"]
