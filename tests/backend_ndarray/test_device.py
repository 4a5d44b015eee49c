"""Devices: cpu(), cpu_numpy() and cuda() (enabled only with CuPy and a GPU)."""

import numpy as np
import pytest

import needle as ndl


def test_every_device_is_listed_and_cpu_is_the_default():
    devices = ndl.all_devices()
    assert [repr(d) for d in devices] == ["cpu()", "cpu_numpy()", "cuda()"]
    assert ndl.default_device() is ndl.cpu()
    assert ndl.cpu().enabled() and ndl.cpu_numpy().enabled()
    assert ndl.cpu() is not ndl.cpu_numpy()


def test_random_numbers_come_from_numpys_global_rng():
    np.random.seed(3)
    want = np.random.rand(2, 3).astype(np.float32)
    np.random.seed(3)
    np.testing.assert_array_equal(ndl.cpu().rand(2, 3).numpy(), want)
    np.testing.assert_array_equal(ndl.cpu().one_hot(3, [2, 0]).numpy(), np.eye(3)[[2, 0]])


@pytest.mark.skipif(ndl.cuda().enabled(), reason="this machine has a usable GPU")
def test_a_disabled_cuda_device_says_what_it_needs():
    with pytest.raises(RuntimeError, match=r"cuda\(\) is not available.*CuPy"):
        ndl.Tensor([1.0], device=ndl.cuda())


@pytest.mark.skipif(not ndl.cuda().enabled(), reason="ndl.cuda() needs CuPy and a GPU")
def test_cuda_tensors_compute_and_differentiate_like_cpu():
    a = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    results = []
    for device in (ndl.cpu(), ndl.cuda()):
        x = ndl.Tensor(a, device=device)
        loss = ndl.logsumexp(x @ x.transpose(), 1).sum()
        loss.backward()
        results.append((loss.numpy(), x.grad.numpy()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-4, atol=1e-6)
