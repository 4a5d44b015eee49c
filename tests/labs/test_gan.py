"""The gan lab: cs231n's networks and losses against PyTorch, and its thresholds."""

import numpy as np
import pytest
import torch

import needle as ndl
from needle import labs
from needle.labs import gan


def test_networks_have_cs231n_shapes_and_parameter_counts():
    assert gan.count_params(gan.discriminator()) == 267009
    assert gan.count_params(gan.generator(4)) == 1858320
    assert gan.count_params(gan.build_dc_classifier()) == 1102721
    assert gan.count_params(gan.build_dc_generator(4)) == 6580801
    G, D = gan.build_dc_generator(), gan.build_dc_classifier()
    fake = G(gan.sample_noise(3, gan.NOISE_DIM))
    assert fake.shape == (3, 784) and np.abs(fake.numpy()).max() <= 1
    assert D(fake).shape == (3, 1)


def test_sample_noise_is_uniform_in_minus_one_one():
    noise = gan.sample_noise(2000, 5).numpy()
    assert noise.shape == (2000, 5) and noise.min() >= -1 and noise.max() < 1
    assert abs(noise.mean()) < 0.02 and abs(noise.var() - 1 / 3) < 0.02


def test_losses_and_gradients_match_torch():
    rng = np.random.default_rng(0)
    real = (rng.normal(size=(6, 1)) * 20).astype(np.float32)
    fake = (rng.normal(size=(6, 1)) * 20).astype(np.float32)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    pairs = [
        (gan.discriminator_loss, lambda r, f: bce(r, torch.ones_like(r)) +
         bce(f, torch.zeros_like(f))),
        (lambda r, f: gan.generator_loss(f), lambda r, f: bce(f, torch.ones_like(f))),
        (gan.ls_discriminator_loss, lambda r, f: 0.5 * ((r - 1) ** 2).mean() +
         0.5 * (f ** 2).mean()),
        (lambda r, f: gan.ls_generator_loss(f), lambda r, f: 0.5 * ((f - 1) ** 2).mean())]
    for ours, theirs in pairs:
        r, f = ndl.Tensor(real), ndl.Tensor(fake)
        loss = ours(r, f)
        loss.backward()
        r_t, f_t = (torch.tensor(a, requires_grad=True) for a in (real, fake))
        want = theirs(r_t, f_t)
        want.backward()
        assert float(loss.numpy()) == pytest.approx(want.item(), rel=1e-5)
        np.testing.assert_allclose(f.grad.numpy(), f_t.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_loss_checks_against_closed_forms():
    assert max(gan.loss_checks().values()) < 1e-6


@pytest.mark.lab
@pytest.mark.slow
def test_gan_lab(tmp_path):
    results = labs.run_lab("gan", quick=True, out=str(tmp_path))
    assert (results["gan_d_params"], results["gan_g_params"]) == (267009, 1858320)
    assert (results["dcgan_d_params"], results["dcgan_g_params"]) == (1102721, 6580801)
    for name in ("d_loss", "g_loss", "ls_d_loss", "ls_g_loss"):
        assert results[f"{name}_error"] < 1e-6
    assert results["dcgan_confident"] >= 0.2
    assert results["dcgan_classes_covered"] >= 6
    assert (tmp_path / "dcgan_iter400.png").exists()
