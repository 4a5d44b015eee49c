"""Datasets, the DataLoader and image transforms."""

from .dataloader import DataLoader
from .dataset import Dataset, NDArrayDataset
from .mnist import MNISTDataset, parse_mnist

__all__ = ["DataLoader", "Dataset", "MNISTDataset", "NDArrayDataset", "parse_mnist"]
