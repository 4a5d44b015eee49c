"""NDArray speaks numpy's array protocols (as CuPy arrays do) and keeps the course's view
internals: ``_handle``, ``_offset``, ``_strides``, ``process_slice``, ``as_strided``,
``NDArray.make`` and a ``.flat`` that writes through."""

import numpy as np
import pytest

import needle as ndl
from needle import backend_ndarray as nd

CPUS = [pytest.param(ndl.cpu(), id="cpu"), pytest.param(ndl.cpu_numpy(), id="cpu_numpy")]
GPU = pytest.mark.skipif(not ndl.cuda().enabled(), reason="ndl.cuda() needs CuPy and a GPU")
DEVICES = CPUS + [pytest.param(ndl.cuda(), id="cuda", marks=GPU)]


def arange(shape, device, dtype="float32"):
    return nd.array(np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape), device=device)


# ---------------------------------------------------------------------------- protocols
@pytest.mark.parametrize("device", CPUS)
def test_numpy_reads_a_cpu_ndarray_in_place(device):
    a = arange((3, 4), device)
    host = np.asarray(a)
    assert isinstance(host, np.ndarray) and np.shares_memory(host, a.numpy())
    np.testing.assert_allclose(a, np.arange(12).reshape(3, 4))  # the course's checks
    np.testing.assert_array_equal(np.array(a, dtype=np.float64), np.arange(12).reshape(3, 4))
    assert np.array(a).dtype == np.float32


@pytest.mark.parametrize("device", DEVICES)
def test_numpy_functions_and_ufuncs_on_ndarrays_return_ndarrays(device):
    a, want = arange((3, 4), device), np.arange(12, dtype=np.float32).reshape(3, 4)
    results = [(np.exp(a), np.exp(want)), (np.add(a, a), want + want),
               (np.max(a, axis=1, keepdims=True), want.max(axis=1, keepdims=True)),
               (np.concatenate([a, a], axis=0), np.concatenate([want, want])),
               (np.reshape(a, (4, 3)), want.reshape(4, 3)), (abs(-a), want)]
    for got, expected in results:
        assert isinstance(got, nd.NDArray) and got.device is device
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)
    assert float(np.linalg.norm(a)) == pytest.approx(np.linalg.norm(want), rel=1e-6)


@pytest.mark.parametrize("device", CPUS)
def test_mixing_ndarrays_and_numpy_arrays(device):
    a, b = arange((3, 4), device), np.ones((3, 4))
    for got in (a - b, b - a):
        assert isinstance(got, nd.NDArray)
    assert np.linalg.norm(a - b) == pytest.approx(np.linalg.norm(np.arange(12) - 1.0))
    out = nd.array(np.zeros((3, 4)), device=device)
    np.multiply(a, 2, out=out)  # writes into the NDArray
    np.testing.assert_array_equal(out.numpy(), 2 * np.arange(12).reshape(3, 4))


@pytest.mark.parametrize("device", DEVICES)
def test_python_numbers_from_one_element_arrays(device):
    a = arange((2, 3), device)
    assert float(a[1, 2]) == 5.0 and int(a[1, 2]) == 5 and bool(a[0, 1])
    assert float(a.sum()) == 15.0
    with pytest.raises(ValueError, match=r"one-element array.*\(2, 3\)"):
        float(a)


def test_ndarrays_of_two_devices_do_not_mix():
    a, b = arange((2,), ndl.cpu()), arange((2,), ndl.cpu_numpy())
    with pytest.raises(ValueError, match=r"different devices: cpu\(\) and cpu_numpy\(\)"):
        np.add(a, b)


@GPU
def test_a_gpu_ndarray_never_converts_implicitly():
    """CuPy's rule: numpy would copy from the GPU silently, so it raises; .numpy() copies."""
    a = arange((2, 3), ndl.cuda())
    with pytest.raises(TypeError, match=r"implicit conversion.*\.numpy\(\)"):
        np.asarray(a)
    np.testing.assert_array_equal(a.numpy(), np.arange(6).reshape(2, 3))
    with pytest.raises(TypeError):
        np.add(a, np.ones((2, 3)))  # a host array in a GPU computation


# ---------------------------------------------------------------------------- internals
@pytest.mark.parametrize("device", DEVICES)
def test_views_share_one_handle_at_their_own_offsets(device):
    a = arange((4, 5), device)
    views = [a[1:, ::2], a.permute((1, 0)), a[2], a.flip((1,)), a.broadcast_to((3, 4, 5)),
             a.as_strided((2, 2), (5, 1))]
    for view in views:
        assert view._handle.ptr() == a._handle.ptr()
        assert view._strides == view.strides
        same = nd.NDArray.make(view.shape, strides=view._strides, device=device,
                               handle=view._handle, offset=view._offset)
        np.testing.assert_array_equal(same.numpy(), view.numpy())
    assert a[1:, ::2]._offset == 5 and a[2]._offset == 10 and a._offset == 0
    assert a.flip((1,))._offset == 4  # element (0, 0) of the flipped view is a[0, 4]
    assert arange((4, 5), device)._handle.ptr() != a._handle.ptr()
    assert a._handle.size == 20


@pytest.mark.parametrize("device", DEVICES)
def test_make_over_a_handle_writes_into_the_buffer(device):
    a = arange((3, 4), device)
    column = nd.NDArray.make((3,), strides=(4,), device=device, handle=a._handle, offset=1)
    column[1] = -1.0
    assert a.numpy()[1, 1] == -1.0


def test_process_slice_makes_start_stop_step_explicit():
    a = nd.array(np.zeros((5, 7)))
    assert a.process_slice(slice(None, None, None), 1) == slice(0, 7, 1)
    assert a.process_slice(slice(1, -1, 2), 0) == slice(1, 4, 2)
    assert a.process_slice(slice(-3, None), 1) == slice(4, 7, 1)


@pytest.mark.parametrize("device", DEVICES)
def test_flat_writes_through_to_the_array(device):
    """The course's finite-difference checkers perturb arrays in place this way."""
    a = arange((3, 4), device)
    a.flat[5] += 0.5
    a.flat[0] = 7.0
    want = np.arange(12, dtype=np.float32)
    want[5] += 0.5
    want[0] = 7.0
    np.testing.assert_array_equal(a.numpy(), want.reshape(3, 4))
    assert a.flat.shape == (12,) and float(a.flat[5]) == 5.5
    with pytest.raises(ValueError, match="flat needs a compact array"):
        a.permute((1, 0)).flat


def test_flat_perturbs_a_tensor_in_place():
    x = ndl.Tensor(np.zeros((2, 2)))
    x.realize_cached_data().flat[3] += 1e-4
    assert x.numpy()[1, 1] == 1e-4 and x.dtype == np.float64
