"""Looking inside training: per-layer activation statistics and histograms from forward hooks.

fast.ai's notebooks 06 and 07a on an MNIST CNN (four stride-2 convs of 8, 16, 32, 32
channels, global average pooling, a linear classifier), trained one epoch with SGD under a
cosine warm-up/anneal ``ParamScheduler``. ``nn.Hooks`` on each activation record its mean,
std and histogram at every training batch, for three versions: ReLU with the default
(Kaiming-uniform) initialisation; ``GeneralRelu(leak=0.1, sub=0.4)``; and GeneralRelu after
``nn.init.lsuv``, which rescales each conv until its activation has mean 0 and std 1.
Figures: ``telemetry_stats.png`` (means and stds over the batches, per layer) and
``telemetry_hist.png`` (each layer's histogram over time, log counts).

Results: ``{relu,general_relu,lsuv}_val_acc``, ``{...}_mean_last`` and ``{...}_std_last``
(the last activation's mean and std over the final 10 batches), and
``lsuv_final_std_layer{1..4}`` / ``lsuv_final_mean_layer{1..4}``, the statistics LSUV
reached, plus ``lsuv_max_std_dev`` (max |std - 1|).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

import needle as ndl
from needle import nn
from needle.callbacks import ParamScheduler, Recorder
from needle.learner import Learner
from needle.schedules import combine_scheds, sched_cos

from . import common

WIDTHS, KERNELS = (8, 16, 32, 32), (5, 3, 3, 3)
BINS = np.linspace(-1, 7, 41)
VARIANTS = ("relu", "general_relu", "lsuv")


def cnn(general: bool) -> tuple[nn.Module, list[nn.Module], list[nn.Module]]:
    """The model, its convs and their activations."""
    convs: list[nn.Module] = []
    acts: list[nn.Module] = []
    layers: list[nn.Module] = []
    width = 1
    for out, k in zip(WIDTHS, KERNELS):
        convs.append(nn.Conv(width, out, k, stride=2))
        acts.append(nn.GeneralRelu(0.1, 0.4) if general else nn.ReLU())
        layers += [convs[-1], acts[-1]]
        width = out
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(WIDTHS[-1], 10))
    return model, convs, acts


def append_stats(hook: nn.Hook, module: nn.Module, args: Any, output: ndl.Tensor) -> None:
    """Keep the mean, std and histogram of each training batch's activations."""
    if not module.training:
        return
    if not hasattr(hook, "stats"):
        setattr(hook, "stats", ([], [], []))
    values = output.numpy().astype(np.float64)
    means, stds, hists = getattr(hook, "stats")
    means.append(float(values.mean()))
    stds.append(float(values.std()))
    hists.append(np.histogram(values, BINS)[0])


def train(variant: str, data: tuple[ndl.data.DataLoader, ndl.data.DataLoader],
          batch: ndl.Tensor, seed: int, results: dict[str, float]) -> list[Any]:
    np.random.seed(seed)
    model, convs, acts = cnn(variant != "relu")
    if variant == "lsuv":
        stats = nn.init.lsuv(model, batch, layers=list(zip(convs, acts)))
        for i, (mean, std) in enumerate(stats.values(), 1):
            results[f"lsuv_final_mean_layer{i}"] = mean
            results[f"lsuv_final_std_layer{i}"] = std
        results["lsuv_max_std_dev"] = max(abs(std - 1) for _, std in stats.values())
    schedule = combine_scheds([0.3, 0.7], [sched_cos(0.1, 0.6), sched_cos(0.6, 0.01)])
    recorder = Recorder()
    with nn.Hooks(acts, append_stats) as hooks:
        Learner(model, data[0], nn.SoftmaxLoss(), ndl.optim.SGD(model.parameters(), lr=0.1),
                test_loader=data[1],
                callbacks=[recorder, ParamScheduler({"lr": schedule})]).fit(1)
    results[f"{variant}_val_acc"] = recorder.history[-1]["test_acc"]
    means, stds, _ = getattr(hooks[-1], "stats")
    results[f"{variant}_mean_last"] = float(np.mean(means[-10:]))
    results[f"{variant}_std_last"] = float(np.mean(stds[-10:]))
    return [getattr(h, "stats") for h in hooks]


def run(quick: bool, out: str, seed: int, data_dir: str | None) -> dict[str, float]:
    x_train, y_train, x_test, y_test = common.load_mnist(data_dir)
    n = 3000 if quick else len(x_train)
    mean, std = x_train[:n].mean(), x_train[:n].std()
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    n_test = 1000 if quick else len(x_test)
    data = (ndl.data.DataLoader(ndl.data.NDArrayDataset(x_train[:n], y_train[:n]), 64,
                                shuffle=True),
            ndl.data.DataLoader(ndl.data.NDArrayDataset(x_test[:n_test], y_test[:n_test]),
                                500))
    batch = ndl.Tensor(x_train[:256], requires_grad=False)
    results: dict[str, float] = {}
    telemetry = {v: train(v, data, batch, seed, results) for v in VARIANTS}
    for v in VARIANTS:
        print(f"{v:<13} test accuracy {results[f'{v}_val_acc']:.4f}; last layer at the end: "
              f"mean {results[f'{v}_mean_last']:.3f}, std {results[f'{v}_std_last']:.3f}")
    _plot_stats(telemetry, os.path.join(out, "telemetry_stats.png"))
    _plot_hists(telemetry, os.path.join(out, "telemetry_hist.png"))
    return results


def _plot_stats(telemetry: dict[str, list[Any]], path: str) -> None:
    plt = common.pyplot()
    fig, axes = plt.subplots(2, len(VARIANTS), figsize=(4 * len(VARIANTS), 6), sharey="row")
    for col, variant in enumerate(VARIANTS):
        for layer, (means, stds, _) in enumerate(telemetry[variant], 1):
            axes[0, col].plot(means, label=f"layer {layer}")
            axes[1, col].plot(stds, label=f"layer {layer}")
        axes[0, col].set_title(variant)
        axes[1, col].set_xlabel("batch")
    axes[0, 0].set_ylabel("activation mean")
    axes[1, 0].set_ylabel("activation std")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_hists(telemetry: dict[str, list[Any]], path: str) -> None:
    plt = common.pyplot()
    layers = len(WIDTHS)
    fig, axes = plt.subplots(len(VARIANTS), layers, figsize=(3 * layers, 2.2 * len(VARIANTS)))
    for row, variant in enumerate(VARIANTS):
        for col, (_, _, hists) in enumerate(telemetry[variant]):
            image = np.log1p(np.stack(hists).T)
            axes[row, col].imshow(image, origin="lower", aspect="auto",
                                  extent=(0, len(hists), BINS[0], BINS[-1]))
            axes[row, col].set_title(f"{variant} layer {col + 1}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
