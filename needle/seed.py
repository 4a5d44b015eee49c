"""``manual_seed(seed)``: one call that makes a run repeatable.

needle draws every random number from numpy's global RNG, in the order the API contract
lists (``init.rand``/``randn``/``randb``, Dropout, the data augmentations, DataLoader's
shuffle), so seeding it fixes all of needle. Python's ``random`` and CuPy's RNG (when a GPU
is present) are seeded too, for user code that draws from them.
"""

from __future__ import annotations

import random

import numpy as np

from .backend_ndarray import cuda


def manual_seed(seed: int) -> None:
    """Seed numpy's global RNG, Python's ``random`` and CuPy's RNG with ``seed``."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"manual_seed expects an integer seed, got {type(seed).__name__} "
                        f"{seed!r}")
    if not 0 <= seed < 2**32:
        raise ValueError(f"manual_seed expects a seed in [0, 2**32), got {seed}")
    np.random.seed(int(seed))
    random.seed(int(seed))
    if cuda().enabled():
        cuda().module().random.seed(int(seed))
