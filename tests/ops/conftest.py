"""Every op test runs on both CPU devices: ``cpu()`` and ``cpu_numpy()`` (the course's two
names), with tensors created without a device landing on the one under test."""

from __future__ import annotations

from typing import Any

import pytest

import needle as ndl
from needle import backend_ndarray, init
from needle.backend_ndarray import device as device_module
from needle.backend_ndarray import ndarray as ndarray_module

DEVICES = {"cpu": ndl.cpu, "cpu_numpy": ndl.cpu_numpy}


@pytest.fixture(autouse=True, params=sorted(DEVICES))
def device(request: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    chosen = DEVICES[request.param]()
    for module in (device_module, ndarray_module, backend_ndarray, init.basic):
        monkeypatch.setattr(module, "default_device", lambda: chosen)
    assert ndl.Tensor([1.0]).device is chosen
    return chosen
