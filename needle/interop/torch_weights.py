"""PyTorch state dicts in and out of needle models: names and weight layouts converted.

needle keeps a Linear weight as (in, out), a conv weight as K×K×C_in×C_out and recurrent
weights as (input, gates·hidden); PyTorch keeps (out, in), C_out×C_in×K×K and
(gates·hidden, input). The gate blocks are in the same order in both (LSTM: i, f, g, o;
GRU: r, z, n), so recurrent weights only transpose. BatchNorm's running statistics map to
PyTorch's buffers; its ``num_batches_tracked`` has no needle counterpart (ignored on load,
written as 0).

Each needle tensor gets the name PyTorch would give it in a model built layer for layer
(``Sequential`` children by index, ``LSTM`` weights as ``weight_ih_l0``, ...). A state dict
whose names match those is matched by name; otherwise, when both list the same kinds of
tensors in the same order (a model with other attribute names, e.g. ``emb`` for
``embedding``), by order. Anything else is an error that lists the unmatched keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from .. import nn
from ..autograd import Tensor

Layout = Callable[[np.ndarray], np.ndarray]


def _same(a: np.ndarray) -> np.ndarray:
    return a


def _transpose(a: np.ndarray) -> np.ndarray:
    return a.T


def _conv_to_torch(w: np.ndarray) -> np.ndarray:
    return w.transpose(3, 2, 0, 1)  # K×K×C_in×C_out -> C_out×C_in×K×K


def _conv_from_torch(w: np.ndarray) -> np.ndarray:
    return w.transpose(2, 3, 1, 0)


def _flat(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1)


@dataclass
class Entry:
    """One needle tensor under its PyTorch name, with the layout maps both ways."""

    torch_name: str
    tensor: Tensor
    to_torch: Layout = _same
    from_torch: Layout = _same

    def torch_shape(self) -> tuple[int, ...]:
        return tuple(self.to_torch(np.empty(self.tensor.shape)).shape)


def _linear(m: nn.Linear) -> list[Entry]:
    entries = [Entry("weight", m.weight, _transpose, _transpose)]
    if m.bias is not None:
        shape = m.bias.shape
        entries.append(Entry("bias", m.bias, _flat, lambda b: b.reshape(shape)))
    return entries


def _conv(m: nn.Conv2d) -> list[Entry]:
    entries = [Entry("weight", m.weight, _conv_to_torch, _conv_from_torch)]
    return entries + ([Entry("bias", m.bias)] if m.bias is not None else [])


def _cell(cell: Any, suffix: str = "") -> list[Entry]:
    entries = [Entry(f"weight_ih{suffix}", cell.W_ih, _transpose, _transpose),
               Entry(f"weight_hh{suffix}", cell.W_hh, _transpose, _transpose)]
    if cell.bias_ih is not None:
        entries += [Entry(f"bias_ih{suffix}", cell.bias_ih), Entry(f"bias_hh{suffix}",
                                                                   cell.bias_hh)]
    return entries


def _recurrent(m: Any) -> list[Entry]:
    return [e for k, cell in enumerate(m.cells) for e in _cell(cell, f"_l{k}")]


def _affine(*names: str) -> Callable[[Any], list[Entry]]:
    return lambda m: [Entry(name, getattr(m, name)) for name in names]


#: module class -> its tensors under PyTorch's names (subclasses match too)
LAYERS: dict[type, Callable[[Any], list[Entry]]] = {
    nn.Linear: _linear,
    nn.Conv2d: _conv,  # Conv and ConvTranspose2d (whose weight is K×K×C_out×C_in) too
    nn.BatchNorm1d: _affine("weight", "bias", "running_mean", "running_var"),
    nn.LayerNorm1d: _affine("weight", "bias"),
    nn.Embedding: _affine("weight"),
    nn.RNN: _recurrent, nn.LSTM: _recurrent, nn.GRU: _recurrent,
    nn.RNNCell: _cell, nn.LSTMCell: _cell, nn.GRUCell: _cell,
}

#: PyTorch buffers with no needle counterpart: ignored on load, written with this value
TORCH_ONLY = {"num_batches_tracked": 0}


def torch_entries(module: nn.Module, prefix: str = "") -> list[Entry]:
    """Every tensor of ``module`` under the name a layer-for-layer PyTorch model gives it."""
    rule = next((r for t, r in LAYERS.items() if isinstance(module, t)), None)
    if rule is not None:
        entries = rule(module)
    elif isinstance(module, nn.Sequential):  # PyTorch names the children 0, 1, ...
        return [e for i in range(len(module)) for e in torch_entries(module[i], f"{prefix}{i}.")]
    else:
        children = list(module.named_children())
        inside = tuple(f"{name}." for name, _ in children)
        entries = [Entry(name, t) for name, t in module.named_tensors()
                   if not name.startswith(inside)]
        entries += [e for name, child in children for e in torch_entries(child, f"{name}.")]
        return [Entry(prefix + e.torch_name, e.tensor, e.to_torch, e.from_torch)
                for e in entries]
    return [Entry(prefix + e.torch_name, e.tensor, e.to_torch, e.from_torch) for e in entries]


def _leaf(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _is_torch_only(name: str) -> bool:
    return _leaf(name) in TORCH_ONLY


def match(entries: list[Entry], keys: list[str]) -> list[tuple[Entry, str]]:
    """Pair each entry with a key of a PyTorch state dict: by name, else by order."""
    keys = [k for k in keys if not _is_torch_only(k)]
    by_name = {e.torch_name for e in entries}
    if by_name == set(keys):
        return [(e, e.torch_name) for e in entries]
    if len(keys) == len(entries) and all(_leaf(k) == _leaf(e.torch_name)
                                         for e, k in zip(entries, keys)):
        return list(zip(entries, keys))
    missing = [e.torch_name for e in entries if e.torch_name not in set(keys)]
    unexpected = [k for k in keys if k not in by_name]
    order = next((f"; by order, entry {i} is {k!r} where the model has {e.torch_name!r}"
                  for i, (e, k) in enumerate(zip(entries, keys))
                  if _leaf(k) != _leaf(e.torch_name)),
                 f"; by order, the model has {len(entries)} tensors and the state dict "
                 f"{len(keys)}")
    raise RuntimeError(f"the PyTorch state dict does not match the model: keys the model "
                       f"expects but the state dict lacks: {missing}; keys the model does "
                       f"not have: {unexpected}{order}")


def _as_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch.Tensor
        return value.detach().cpu().numpy()
    return np.asarray(value)


def load_torch_state_dict(model: nn.Module, state_dict: Mapping[str, Any]) -> None:
    """Set ``model``'s parameters and buffers from a PyTorch ``state_dict`` (torch tensors or
    numpy arrays), converting layouts; nothing changes when a key or a shape does not fit."""
    pairs = match(torch_entries(model), list(state_dict))
    values, wrong = [], []
    for entry, key in pairs:
        value = _as_numpy(state_dict[key])
        if tuple(value.shape) != entry.torch_shape():
            wrong.append(f"{key}: expected {entry.torch_shape()} (for needle's "
                         f"{entry.tensor.shape}), got {tuple(value.shape)}")
        values.append(value)
    if wrong:
        raise RuntimeError("the PyTorch state dict does not match the model: wrong shape: "
                           + "; ".join(wrong))
    for (entry, _), value in zip(pairs, values):
        tensor = entry.tensor
        tensor.data = Tensor(np.ascontiguousarray(entry.from_torch(value)), device=tensor.device,
                             dtype=tensor.dtype)


def to_torch_state_dict(model: nn.Module, template: Any = None) -> dict[str, Any]:
    """``model``'s tensors as a PyTorch state dict of torch tensors (copies) in PyTorch's
    layouts. With ``template`` (a PyTorch state dict or module), its names and order are
    used, matched as in ``load_torch_state_dict``, and its ``num_batches_tracked`` kept."""
    import torch  # only needed here: torch is not a dependency of needle

    entries = torch_entries(model)
    if template is None:
        template, names = {}, []
        for e in entries:
            names.append(e.torch_name)
            if e.torch_name.endswith("running_var"):  # BatchNorm: PyTorch's step counter next
                names.append(e.torch_name[:-len("running_var")] + "num_batches_tracked")
    else:
        template = template.state_dict() if hasattr(template, "state_dict") else template
        names = list(template)
    converted = {key: torch.from_numpy(np.ascontiguousarray(entry.to_torch(entry.tensor.numpy()))
                                       .copy()) for entry, key in match(entries, names)}
    out = {}
    for name in names:
        if name in converted:
            out[name] = converted[name]
        else:  # a PyTorch-only buffer
            default = torch.tensor(TORCH_ONLY[_leaf(name)], dtype=torch.int64)
            out[name] = template[name].clone() if name in template else default
    return out
