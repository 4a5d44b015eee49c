"""Initialisers: tensors filled with constants or random values, in numpy's RNG order."""

from .basic import (bernoulli_mask, constant, one_hot, ones, ones_like, rand, randb, randn,
                    uniform, zeros, zeros_like)
from .weights import kaiming_normal, kaiming_uniform, xavier_normal, xavier_uniform

__all__ = ["bernoulli_mask", "constant", "kaiming_normal", "kaiming_uniform", "one_hot", "ones",
           "ones_like", "rand", "randb", "randn", "uniform", "xavier_normal", "xavier_uniform",
           "zeros", "zeros_like"]
