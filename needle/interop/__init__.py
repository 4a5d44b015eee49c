"""Interoperability: PyTorch state dicts in and out of needle models, and DLPack arrays.

>>> import needle as ndl
>>> model = ndl.nn.Linear(3, 2)
>>> sorted(ndl.interop.to_torch_state_dict(model))
['bias', 'weight']
"""

from .dlpack import from_dlpack
from .torch_weights import LAYERS, load_torch_state_dict, to_torch_state_dict, torch_entries

__all__ = ["LAYERS", "from_dlpack", "load_torch_state_dict", "to_torch_state_dict",
           "torch_entries"]
