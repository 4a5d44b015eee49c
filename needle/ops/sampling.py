"""Sampling indices from probabilities (``torch.multinomial``), drawn from numpy's global RNG."""

from __future__ import annotations

import numpy as np

from ..autograd import Tensor


def multinomial(probs: Tensor, num_samples: int = 1, replacement: bool = False) -> Tensor:
    """``num_samples`` category ids per row of ``probs`` (C,) or (N, C), drawn with
    probability proportional to the (non-negative, not necessarily normalised) weights;
    without ``replacement`` a category is drawn at most once per row. Returns int64
    (num_samples,) or (N, num_samples); each row uses ``np.random.choice``."""
    weights = np.asarray(probs.numpy(), dtype=np.float64)
    if weights.ndim not in (1, 2):
        raise ValueError(f"multinomial expects probabilities (C,) or (N, C), got shape "
                         f"{weights.shape}")
    rows = weights.reshape(-1, weights.shape[-1])
    if not np.all(np.isfinite(rows)) or np.any(rows < 0) or np.any(rows.sum(axis=1) <= 0):
        raise ValueError("multinomial needs finite, non-negative weights with a positive sum "
                         "in every row")
    if not replacement and num_samples > rows.shape[1]:
        raise ValueError(f"cannot draw {num_samples} samples without replacement from "
                         f"{rows.shape[1]} categories")
    drawn = [np.random.choice(rows.shape[1], num_samples, replace=replacement,
                              p=row / row.sum()) for row in rows]
    out = np.stack(drawn).astype(np.int64).reshape(weights.shape[:-1] + (num_samples,))
    return Tensor(out, device=probs.device, requires_grad=False)
