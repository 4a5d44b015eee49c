"""GANs on MNIST: cs231n's fully connected GAN, its losses, least squares, and DCGAN.

cs231n's assignment-3 GAN notebook on needle, trained on the 10,000 real MNIST images
(scaled to [-1, 1]). ``sample_noise`` is U(-1, 1); the fully connected ``discriminator`` and
``generator``, the DCGAN ``build_dc_classifier`` (convolutions without padding, LeakyReLU
0.01, max pooling) and ``build_dc_generator`` (``ConvTranspose2d`` kernel 4, stride 2,
padding 1, with BatchNorm) are cs231n's layer for layer; images are NCHW. ``bce_loss`` is
``nn.BCEWithLogitsLoss`` (stable for logits of any size); ``discriminator_loss`` /
``generator_loss`` and their least-squares variants are cs231n's; the optimiser is Adam
with lr 1e-3 and beta1 0.5; every network starts from cs231n's ``initialize_weights``
(Xavier-uniform Linear and ConvTranspose2d weights; needle's Linear default differs).

The parameter counts are cs231n's, counted with the 4-dimensional noise its checks use. The
full run trains the vanilla and least-squares GANs (300 iterations of 128 each) and cs231n's
DCGAN for 1,000 iterations of 64; ``--quick`` trains only a DCGAN of the same shape with
narrower layers (widths (256, 32, 16) and (16, 32) instead of (1024, 128, 64) and (32, 64)),
for 300 iterations, to fit CI's budget on 2 cores. A CNN trained on real MNIST judges 1,000
DCGAN samples (in the full run also every 250 iterations).
Figures: ``dcgan_iter{N}.png`` (sample grids during training), ``gan_iter{N}.png`` and
``lsgan_iter{N}.png`` in the full run.

Results: ``gan_d_params``, ``gan_g_params``, ``dcgan_d_params``, ``dcgan_g_params``,
``d_loss_error``, ``g_loss_error``, ``ls_d_loss_error``, ``ls_g_loss_error`` (against the
closed forms), ``dcgan_confident`` (share of samples with top probability ≥ 0.9),
``dcgan_classes_covered`` (classes with ≥ 3 % of the samples), ``judge_test_acc``; in the full
run also ``dcgan_confident_iter{N}`` and ``dcgan_classes_covered_iter{N}``.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np

import needle as ndl
from needle import nn

from . import common

NOISE_DIM = 96
Loss = Callable[..., ndl.Tensor]


class Unflatten(nn.Module):
    """x (N, prod(shape)) -> (N, *shape), cs231n's Unflatten (PyTorch's nn.Unflatten(1, ...))."""

    def __init__(self, *shape: int):
        super().__init__()
        self.shape = shape

    def forward(self, x: ndl.Tensor) -> ndl.Tensor:
        return x.reshape((x.shape[0], *self.shape))


def sample_noise(batch_size: int, dim: int) -> ndl.Tensor:
    """Noise (batch_size, dim) uniform in [-1, 1)."""
    return ndl.Tensor(np.random.uniform(-1, 1, (batch_size, dim)).astype(np.float32),
                      requires_grad=False)


def discriminator() -> nn.Module:
    """784 -> 256 -> 256 -> 1 with LeakyReLU(0.01): the logit that an image is real."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.LeakyReLU(0.01),
                         nn.Linear(256, 256), nn.LeakyReLU(0.01), nn.Linear(256, 1))


def generator(noise_dim: int = NOISE_DIM) -> nn.Module:
    """noise -> 1024 -> 1024 -> 784 images in [-1, 1] (tanh)."""
    return nn.Sequential(nn.Linear(noise_dim, 1024), nn.ReLU(), nn.Linear(1024, 1024),
                         nn.ReLU(), nn.Linear(1024, 784), nn.Tanh())


def build_dc_classifier(widths: tuple[int, int] = (32, 64)) -> nn.Module:
    """(N, 784) -> 1 x 28 x 28 -> conv 5x5 (28 -> 24) - pool (12) - conv 5x5 (8) - pool (4)
    - fc 4·4·64 - fc 1."""
    a, b = widths
    return nn.Sequential(Unflatten(1, 28, 28), nn.Conv2d(1, a, 5), nn.LeakyReLU(0.01),
                         nn.MaxPool2d(2), nn.Conv2d(a, b, 5), nn.LeakyReLU(0.01),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * b, 16 * b),
                         nn.LeakyReLU(0.01), nn.Linear(16 * b, 1))


def build_dc_generator(noise_dim: int = NOISE_DIM, widths: tuple[int, int, int] =
                       (1024, 128, 64)) -> nn.Module:
    """noise -> fc 1024 - BN - fc 7·7·128 - BN -> 128 x 7 x 7 -> ConvTranspose 4/2/1 (14) -
    BN -> ConvTranspose 4/2/1 (28) - tanh -> (N, 784)."""
    hidden, c1, c2 = widths
    return nn.Sequential(
        nn.Linear(noise_dim, hidden), nn.ReLU(), nn.BatchNorm1d(hidden),
        nn.Linear(hidden, 7 * 7 * c1), nn.ReLU(), nn.BatchNorm1d(7 * 7 * c1),
        Unflatten(c1, 7, 7), nn.ConvTranspose2d(c1, c2, 4, stride=2, padding=1), nn.ReLU(),
        nn.BatchNorm2d(c2), nn.ConvTranspose2d(c2, 1, 4, stride=2, padding=1), nn.Tanh(),
        nn.Flatten())


def initialize_weights(module: nn.Module) -> None:
    """cs231n's ``initialize_weights`` (``model.apply`` it): Xavier-uniform weights for Linear
    and ConvTranspose2d layers, U(±sqrt(6 / (fan_in + fan_out))). needle's default Linear init
    is Kaiming-uniform, about 2.4 times wider, and with it the fully connected GAN's
    discriminator wins within 250 iterations (D loss 5e-4, every sample alike)."""
    if isinstance(module, nn.Linear):
        fan_in, fan_out = module.weight.shape
    elif isinstance(module, nn.ConvTranspose2d):
        k_h, k_w, c_out, c_in = module.weight.shape
        fan_in, fan_out = c_out * k_h * k_w, c_in * k_h * k_w
    else:
        return
    bound = float(np.sqrt(6 / (fan_in + fan_out)))
    module.weight.data = ndl.Tensor(np.random.uniform(-bound, bound, module.weight.shape)
                                    .astype(np.float32), requires_grad=False)


def initialized(model: nn.Module) -> nn.Module:
    return model.apply(initialize_weights)


def count_params(model: nn.Module) -> int:
    return sum(int(np.prod(p.shape)) for p in model.parameters())


def bce_loss(input: ndl.Tensor, target: ndl.Tensor) -> ndl.Tensor:
    """Mean binary cross-entropy of logits and 0/1 targets, stable for any logit."""
    return nn.BCEWithLogitsLoss()(input, target)


def _full(like: ndl.Tensor, value: float) -> ndl.Tensor:
    return ndl.Tensor(np.full(like.shape, value, np.float32), requires_grad=False)


def discriminator_loss(logits_real: ndl.Tensor, logits_fake: ndl.Tensor) -> ndl.Tensor:
    """BCE(real, 1) + BCE(fake, 0)."""
    return bce_loss(logits_real, _full(logits_real, 1)) + \
        bce_loss(logits_fake, _full(logits_fake, 0))


def generator_loss(logits_fake: ndl.Tensor) -> ndl.Tensor:
    """BCE(fake, 1): the non-saturating generator loss."""
    return bce_loss(logits_fake, _full(logits_fake, 1))


def ls_discriminator_loss(scores_real: ndl.Tensor, scores_fake: ndl.Tensor) -> ndl.Tensor:
    """½ mean((real - 1)²) + ½ mean(fake²)."""
    return 0.5 * ((scores_real - 1) ** 2).mean() + 0.5 * (scores_fake ** 2).mean()


def ls_generator_loss(scores_fake: ndl.Tensor) -> ndl.Tensor:
    """½ mean((fake - 1)²)."""
    return 0.5 * ((scores_fake - 1) ** 2).mean()


def get_optimizer(model: nn.Module) -> ndl.optim.Adam:
    return ndl.optim.Adam(model.parameters(), lr=1e-3, beta1=0.5, beta2=0.999)


def loss_checks() -> dict[str, float]:
    """The losses on fixed logits (some at ±100) against their closed forms in float64."""
    real = np.array([[0.7, -2.3], [100.0, 4.1], [-0.5, 30.0]], np.float32).reshape(-1, 1)
    fake = np.array([[-1.2, 0.3], [-100.0, 2.2], [60.0, -0.1]], np.float32).reshape(-1, 1)
    r, f = ndl.Tensor(real), ndl.Tensor(fake)
    r64, f64 = real.astype(np.float64), fake.astype(np.float64)
    softplus = lambda z: np.logaddexp(0, z)  # noqa: E731  -log sigmoid(-z)
    closed = {"d_loss": np.mean(softplus(-r64)) + np.mean(softplus(f64)),
              "g_loss": np.mean(softplus(-f64)),
              "ls_d_loss": 0.5 * np.mean((r64 - 1) ** 2) + 0.5 * np.mean(f64 ** 2),
              "ls_g_loss": 0.5 * np.mean((f64 - 1) ** 2)}
    found = {"d_loss": discriminator_loss(r, f), "g_loss": generator_loss(f),
             "ls_d_loss": ls_discriminator_loss(r, f), "ls_g_loss": ls_generator_loss(f)}
    return {f"{k}_error": float(abs(float(found[k].numpy()) - v) / abs(v))
            for k, v in closed.items()}


def run_a_gan(D: nn.Module, G: nn.Module, images: np.ndarray, d_loss_fn: Loss,
              g_loss_fn: Loss, num_iterations: int, batch_size: int, out: str, name: str,
              show_every: int, on_show: Callable[[int], None] | None = None) -> None:
    """cs231n's run_a_gan: alternate one D step (G's samples detached) and one G step;
    a grid of 16 samples every ``show_every`` iterations and at the end, when
    ``on_show(iteration)`` is also called."""
    D_opt, G_opt = get_optimizer(D), get_optimizer(G)
    fixed_noise = sample_noise(16, NOISE_DIM)
    for it in range(num_iterations):
        D.train()
        G.train()
        batch = np.random.randint(0, len(images), batch_size)
        real = ndl.Tensor(2 * images[batch] - 1, requires_grad=False)
        fake = G(sample_noise(batch_size, NOISE_DIM)).detach()
        d_loss = d_loss_fn(D(real), D(fake.reshape((batch_size, 784))))
        D_opt.reset_grad()
        d_loss.backward()
        D_opt.step()
        g_loss = g_loss_fn(D(G(sample_noise(batch_size, NOISE_DIM))))
        G_opt.reset_grad()
        g_loss.backward()
        G_opt.step()
        if (it + 1) % show_every == 0 or it + 1 == num_iterations:
            print(f"{name} iter {it + 1}: D {float(d_loss.numpy()):.4f}, "
                  f"G {float(g_loss.numpy()):.4f}", flush=True)
            save_samples(G, fixed_noise, os.path.join(out, f"{name}_iter{it + 1}.png"),
                         f"{name}, iteration {it + 1}")
            if on_show is not None:
                on_show(it + 1)


def generate(G: nn.Module, noise: ndl.Tensor) -> np.ndarray:
    """Samples (N, 1, 28, 28) in [0, 1] from G in eval mode."""
    G.eval()
    with ndl.no_grad():
        samples = G(noise).numpy().reshape(-1, 1, 28, 28)
    return (samples + 1) / 2


def save_samples(G: nn.Module, noise: ndl.Tensor, path: str, title: str) -> None:
    common.save_grid(list(generate(G, noise)), path, ncols=8, suptitle=title)


def judge(G: nn.Module, classifier: nn.Module, count: int = 1000) -> dict[str, float]:
    """The real-MNIST classifier's verdict on ``count`` samples."""
    samples = generate(G, sample_noise(count, NOISE_DIM))
    scores = common.predict_scores(classifier, samples.astype(np.float32))
    probs = np.exp(scores - scores.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    shares = np.bincount(probs.argmax(axis=1), minlength=10) / count
    return {"dcgan_confident": float(np.mean(probs.max(axis=1) >= 0.9)),
            "dcgan_classes_covered": int(np.sum(shares >= 0.03))}


def run(quick: bool, out: str, seed: int, data_dir: str | None) -> dict[str, float]:
    results: dict[str, Any] = {
        "gan_d_params": count_params(discriminator()),
        "gan_g_params": count_params(generator(4)),
        "dcgan_d_params": count_params(build_dc_classifier()),
        "dcgan_g_params": count_params(build_dc_generator(4))}
    results.update(loss_checks())
    X_train, y_train, X_test, y_test = common.load_mnist(data_dir)
    images = np.concatenate([X_train, X_test]).reshape(-1, 784)  # all 10,000 images
    classifier = common.mnist_cnn()
    common.train_classifier(classifier, X_train, y_train, epochs=2 if quick else 4, lr=3e-3)
    results["judge_test_acc"] = common.accuracy(classifier, X_test, y_test)
    if not quick:
        for name, d_loss, g_loss in (("gan", discriminator_loss, generator_loss),
                                     ("lsgan", ls_discriminator_loss, ls_generator_loss)):
            run_a_gan(initialized(discriminator()), initialized(generator()), images, d_loss,
                      g_loss, 300, 128, out, name, show_every=100)
    if quick:  # narrower layers, for CI's time budget
        D = initialized(build_dc_classifier((16, 32)))
        G = initialized(build_dc_generator(NOISE_DIM, (256, 32, 16)))
    else:  # cs231n's DCGAN
        D, G = initialized(build_dc_classifier()), initialized(build_dc_generator(NOISE_DIM))
    iterations = 300 if quick else 1000

    def report(iteration: int) -> None:
        verdict = judge(G, classifier)
        print(f"  judged: {verdict}", flush=True)
        results.update({f"{k}_iter{iteration}": v for k, v in verdict.items()})

    run_a_gan(D, G, images, discriminator_loss, generator_loss, iterations, 64, out, "dcgan",
              show_every=100 if quick else 250, on_show=None if quick else report)
    results.update(judge(G, classifier))
    return results
