"""Small CIFAR-10 python-format batches whose classes are learnable (labs' CIFAR paths)."""

import os
import pickle

import numpy as np


def write_synthetic_cifar(folder, per_batch=240, test_size=200, seed=0):
    """data_batch_1..5 and test_batch: each class a fixed random prototype plus noise."""
    rng = np.random.default_rng(seed)
    prototypes = rng.integers(40, 216, (10, 3072))
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        n = test_size if name == "test_batch" else per_batch
        labels = rng.integers(0, 10, n)
        noise = rng.normal(0, 40, (n, 3072))
        data = np.clip(prototypes[labels] + noise, 0, 255).astype(np.uint8)
        with open(os.path.join(folder, name), "wb") as f:
            pickle.dump({b"data": data, b"labels": [int(v) for v in labels]}, f, protocol=2)
    return folder
