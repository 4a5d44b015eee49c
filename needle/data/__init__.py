"""Datasets, the DataLoader and image transforms."""

from .dataloader import DataLoader
from .dataset import Dataset, NDArrayDataset
from .mnist import MNISTDataset, parse_mnist
from .text import Corpus, Dictionary, batchify, get_batch

__all__ = ["Corpus", "DataLoader", "Dataset", "Dictionary", "MNISTDataset", "NDArrayDataset",
           "batchify", "get_batch", "parse_mnist"]
