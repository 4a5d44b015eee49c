"""Copy a PyTorch layer's (or model's) weights into the matching needle module, converting
the layouts: needle keeps Linear weights (in, out), conv weights (K_h, K_w, C_in, C_out) and
recurrent weights (input, gates * hidden), the transposes of PyTorch's. PyTorch is never
imported: the source is read through its ``state_dict()`` (anything with ``.numpy()``).

    layer = ndl.nn.copy_from_torch(ndl.nn.Linear(3, 2), torch.nn.Linear(3, 2))
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..autograd import Tensor
from .basic import BatchNorm1d, LayerNorm1d, Linear
from .conv import Conv2d, ConvTranspose2d
from .module import Module
from .sequence import Embedding, _RecurrentNetwork

Arrays = dict[str, np.ndarray]


def _linear(layer: Any, w: Arrays) -> dict[str, np.ndarray]:
    out = {"weight": w["weight"].T}
    if "bias" in w:
        out["bias"] = w["bias"].reshape(1, -1)
    return out


def _conv(layer: Any, w: Arrays) -> dict[str, np.ndarray]:
    # Conv2d (C_out, C_in, K_h, K_w) and ConvTranspose2d (C_in, C_out, K_h, K_w) both become
    # needle's (K_h, K_w, ., .) by the same permutation
    return {"weight": w["weight"].transpose(2, 3, 1, 0), **_same(w, "bias")}


def _same(w: Arrays, *names: str) -> dict[str, np.ndarray]:
    return {name: w[name] for name in names if name in w}


def _recurrent(layer: Any, w: Arrays) -> dict[str, np.ndarray]:
    out = {}
    for k in range(layer.num_layers):
        prefix = f"{layer.cells_name}.{k}."
        out[prefix + "W_ih"] = w[f"weight_ih_l{k}"].T
        out[prefix + "W_hh"] = w[f"weight_hh_l{k}"].T
        for name in ("bias_ih", "bias_hh"):
            if f"{name}_l{k}" in w:
                out[prefix + name] = w[f"{name}_l{k}"]
    return out


# needle layer type -> (PyTorch class names it pairs with, conversion of the state)
_CONVERSIONS: list[tuple[type, tuple[str, ...], Callable[[Any, Arrays], dict]]] = [
    (ConvTranspose2d, ("ConvTranspose2d",), _conv),
    (Conv2d, ("Conv2d",), _conv),
    (Linear, ("Linear",), _linear),
    (BatchNorm1d, ("BatchNorm1d", "BatchNorm2d"),
     lambda layer, w: _same(w, "weight", "bias", "running_mean", "running_var")),
    (LayerNorm1d, ("LayerNorm",), lambda layer, w: _same(w, "weight", "bias")),
    (Embedding, ("Embedding",), lambda layer, w: _same(w, "weight")),
    (_RecurrentNetwork, ("RNN", "LSTM", "GRU"), _recurrent),
]


def _conversion(module: Module) -> tuple[tuple[str, ...], Callable[[Any, Arrays], dict]] | None:
    for kind, names, convert in _CONVERSIONS:
        if isinstance(module, kind):
            return names, convert
    return None


def _needle_layers(module: Module) -> list[Module]:
    """The layers with weights, in definition order (a recurrent network counts as one)."""
    if _conversion(module) is not None:
        return [module]
    return [layer for child in module.children() for layer in _needle_layers(child)]


def _torch_layers(module: Any) -> list[Any]:
    """PyTorch's modules that hold parameters or buffers themselves, in definition order."""
    own = list(module.parameters(recurse=False)) + list(module.buffers(recurse=False))
    if own:
        return [module]
    return [layer for child in module.children() for layer in _torch_layers(child)]


def copy_from_torch(module: Module, torch_module: Any) -> Module:
    """Set ``module``'s weights from ``torch_module``'s, layer by layer in definition order
    (Linear, Conv2d, ConvTranspose2d, BatchNorm, LayerNorm, Embedding, RNN/LSTM/GRU),
    converting layouts; the two must have the same layers in the same order."""
    ours, theirs = _needle_layers(module), _torch_layers(torch_module)
    if len(ours) != len(theirs):
        raise ValueError(f"copy_from_torch: the needle module has {len(ours)} layers with "
                         f"weights, the PyTorch one {len(theirs)}")
    for layer, source in zip(ours, theirs):
        names, convert = _conversion(layer)  # type: ignore[misc]
        if type(source).__name__ not in names:
            raise ValueError(f"copy_from_torch: cannot copy a PyTorch {type(source).__name__} "
                             f"into a needle {type(layer).__name__} (expects {names})")
        arrays = {k: v.detach().cpu().numpy() for k, v in source.state_dict().items()
                  if k != "num_batches_tracked"}
        _assign(layer, convert(layer, arrays))
    return module


def _assign(layer: Module, state: dict[str, np.ndarray]) -> None:
    own = dict(layer.named_tensors())
    for name, value in state.items():
        tensor = own[name]
        if tensor.shape != value.shape:
            raise ValueError(f"copy_from_torch: {type(layer).__name__}.{name} has shape "
                             f"{tensor.shape}, the converted PyTorch weight {value.shape}")
        tensor.data = Tensor(np.ascontiguousarray(value), device=tensor.device,
                             dtype=tensor.dtype)
