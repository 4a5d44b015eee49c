"""DLPack: needle arrays and torch tensors / numpy arrays share memory both ways (a write
through one is seen by the other), views keep their strides, devices are reported."""

import numpy as np
import pytest

import needle as ndl
from needle import backend_ndarray as nd

torch = pytest.importorskip("torch")


def test_torch_sees_writes_to_a_needle_array_and_back():
    t = ndl.Tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    shared = torch.from_dlpack(t.cached_data)
    shared[0, 1] = 100.0
    assert t.numpy()[0, 1] == 100.0
    t.cached_data[1, 2] = -7.0
    assert shared[1, 2].item() == -7.0
    assert shared.data_ptr() == t.numpy().ctypes.data


def test_a_tensor_exports_too_and_views_keep_their_strides():
    a = ndl.Tensor(np.arange(12, dtype=np.float32).reshape(3, 4))
    assert torch.equal(torch.from_dlpack(a), torch.arange(12.0).reshape(3, 4))
    view = a.cached_data.permute((1, 0))[1:3]  # a strided view, no copy
    shared = torch.from_dlpack(view)
    assert shared.stride() == (1, 4) and shared.shape == (2, 3)
    shared[0, 0] = 50.0
    assert a.numpy()[0, 1] == 50.0


def test_from_dlpack_shares_torch_memory():
    x = torch.arange(6.0).reshape(2, 3)
    t = ndl.from_dlpack(x)
    assert isinstance(t, ndl.Tensor) and t.device == ndl.cpu() and not t.requires_grad
    x[1, 1] = -1.0
    assert t.numpy()[1, 1] == -1.0
    t.cached_data[0, 0] = 9.0
    assert x[0, 0].item() == 9.0
    assert ndl.from_dlpack(x.T).cached_data.strides == (1, 3)
    assert ndl.from_dlpack(torch.arange(3)).dtype == np.int64
    assert ndl.from_dlpack(x, requires_grad=True).requires_grad


def test_numpy_shares_memory_both_ways():
    a = nd.array(np.ones((2, 2), np.float32))
    host = np.from_dlpack(a)
    host[0, 0] = 5.0
    assert a.numpy()[0, 0] == 5.0
    b = nd.from_dlpack(host)
    assert np.shares_memory(b.numpy(), host)


def test_devices_are_reported():
    a = nd.array(np.ones(3, np.float32))
    assert a.__dlpack_device__() == (1, 0)  # kDLCPU
    assert ndl.Tensor(a).__dlpack_device__() == (1, 0)
    assert torch.from_dlpack(a).device.type == "cpu"


@pytest.mark.skipif(not ndl.cuda().enabled(), reason="needs CuPy and a GPU")
def test_cuda_arrays_share_memory_with_cupy_and_torch():
    import cupy

    a = nd.array(np.arange(4, dtype=np.float32), device=ndl.cuda())
    assert a.__dlpack_device__()[0] == 2  # kDLCUDA
    shared = cupy.from_dlpack(a)
    shared[0] = 42.0
    assert a.numpy()[0] == 42.0
    back = nd.from_dlpack(shared)
    assert back.device == ndl.cuda() and back.numpy()[0] == 42.0


def test_bad_input_is_a_clear_error():
    with pytest.raises(TypeError, match="needs an object with __dlpack__.*got list"):
        ndl.from_dlpack([1.0, 2.0])

    class Elsewhere:
        def __dlpack_device__(self):
            return (14, 0)  # a OneAPI device

    with pytest.raises(ValueError, match="DLPack device type 14 are not supported"):
        ndl.from_dlpack(Elsewhere())
