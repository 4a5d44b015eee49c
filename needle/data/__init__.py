"""Datasets, the DataLoader and image transforms."""

from .bptt import BPTTBatches
from .cifar10 import CIFAR10Dataset
from .dataloader import DataLoader, collate_fields, default_collate
from .dataset import Dataset, NDArrayDataset, Subset
from .digits import Digits, load_digits_split
from .mnist import MNISTDataset, parse_mnist
from .paths import data_root
from .text import Corpus, Dictionary, batchify, get_batch
from .transforms import Compose, Normalize, RandomCrop, RandomFlipHorizontal, Transform

__all__ = ["BPTTBatches", "CIFAR10Dataset", "Compose", "Corpus", "DataLoader", "Dataset", "Dictionary",
           "Digits", "MNISTDataset", "NDArrayDataset", "Normalize", "RandomCrop",
           "RandomFlipHorizontal", "Subset", "Transform", "batchify", "collate_fields",
           "data_root", "default_collate", "get_batch", "load_digits_split", "parse_mnist"]
