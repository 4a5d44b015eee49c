"""needle's command line: ``python -m needle train ...`` (and subcommands plugged in below).

    python -m needle train --model mlp_resnet --dataset digits --epochs 10 --out runs/digits
    python -m needle train --dataset mnist --resume runs/mnist/checkpoint.safetensors
    python -m needle export --checkpoint runs/digits/model.safetensors --out model.onnx

``train`` runs data-parallel under an MPI launcher (``mpiexec -n 4 python -m needle train``,
or ``train --nproc 4``, which starts one; see docs/distributed.md): each rank trains on its
share of every batch, and rank 0 alone prints and writes files.

``train`` prints one line per epoch and writes ``OUT/history.json`` (one object per epoch),
``OUT/curves.png`` (loss and accuracy per epoch, train vs test), ``OUT/checkpoint.safetensors``
(after every epoch; ``--resume`` continues from it) and ``OUT/model.safetensors``.

Extension points — each addition is one table entry or one function:

- ``DATASETS[name] = loader(args) -> Data``: a Data holds the train and test datasets and
  the facts models need (``input_shape`` of one sample, ``num_classes``), a ``kind`` that
  picks the training loop, and an optional ``note`` printed before training.
- ``MODELS[name] = builder(data, args) -> nn.Module``.
- ``LOOPS[kind] = loop(model, data, args) -> history``: trains and returns one dict per
  epoch (``epoch, train_loss, test_loss, lr, seconds`` and the kind's own metrics such as
  ``train_acc``/``test_acc`` or ``train_ppl``/``test_ppl``). ``"classification"`` is
  ``train_classifier``, built on ``needle.train.fit``.
- ``TRAIN_OPTIONS``: functions ``(parser) -> None`` adding flags to ``train`` (a model's or
  dataset's own hyper-parameters).
- ``COMMANDS[name] = (add_arguments(parser), run(args) -> None)``: subcommands.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, cast

import numpy as np

from . import data as ndl_data
from . import distributed as dist
from . import lm_command, nn, optim
from .backend_ndarray import allocator
from .distributed.launch import launch, without_option
from .models import CNN, MLPResNet, ResNet9
from .onnx import command as onnx_command
from .serialization import atomic_write, save
from .train import fit

History = list[dict[str, Any]]


@dataclass
class Data:
    """A dataset as the command line sees it: the two splits and the facts about them."""

    train: Any
    test: Any
    input_shape: tuple[int, ...]
    num_classes: int
    kind: str = "classification"
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def data_dir(args: argparse.Namespace) -> str:
    """``--data-dir``, else ``$NEEDLE_DATA``, else ``../shared/data`` from the project root."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    default = os.path.join(root, os.pardir, "shared", "data")
    return args.data_dir or os.environ.get("NEEDLE_DATA") or os.path.normpath(default)


# ---------------------------------------------------------------------------- datasets
def load_digits(args: argparse.Namespace) -> Data:
    """scikit-learn's 8x8 digits: 1,437 training and 360 test images, a fixed split."""
    train, test = ndl_data.Digits(train=True), ndl_data.Digits(train=False)
    return Data(train, test, input_shape=(8, 8, 1), num_classes=10,
                note="digits: scikit-learn's 1,797 real 8x8 digits, fixed 1,437/360 split")


def load_mnist(args: argparse.Namespace) -> Data:
    """The 10,000 real MNIST test images (the only ones here): first 8,000 / last 2,000."""
    folder = os.path.join(data_dir(args), "mnist")
    full = ndl_data.MNISTDataset(os.path.join(folder, "t10k-images-idx3-ubyte.gz"),
                                 os.path.join(folder, "t10k-labels-idx1-ubyte.gz"))
    n_train = len(full) * 4 // 5
    return Data(ndl_data.Subset(full, np.arange(n_train)),
                ndl_data.Subset(full, np.arange(n_train, len(full))),
                input_shape=(28, 28, 1), num_classes=10,
                note=f"mnist: only the {len(full):,} real MNIST test images are available "
                     f"here; training on the first {n_train:,}, testing on the last "
                     f"{len(full) - n_train:,}")


def load_cifar10(args: argparse.Namespace) -> Data:
    """CIFAR-10's python batches from ``--data-dir`` (the batch files themselves or the
    ``cifar-10-batches-py`` folder inside it); images N x 3 x 32 x 32 (channels first).
    ``--augment`` adds random flips and crops to the training images."""
    folder = data_dir(args)
    inner = os.path.join(folder, "cifar-10-batches-py")
    folder = inner if os.path.isdir(inner) else folder
    augment = [ndl_data.RandomFlipHorizontal(), ndl_data.RandomCrop(4)] if args.augment else None
    train = ndl_data.CIFAR10Dataset(folder, train=True, transforms=augment)
    test = ndl_data.CIFAR10Dataset(folder, train=False)
    return Data(train, test, input_shape=(3, 32, 32), num_classes=10,
                extra={"channels_first": True},
                note=f"cifar10: {len(train):,} training and {len(test):,} test images from "
                     f"{folder}")


def load_ptb(args: argparse.Namespace) -> Data:
    """Penn Treebank: trains on ptb.valid.txt, tests on ptb.test.txt (the splits here)."""
    return Data(**lm_command.load_ptb(data_dir(args), args))


DATASETS: dict[str, Callable[[argparse.Namespace], Data]] = {
    "digits": load_digits,
    "mnist": load_mnist,
    "cifar10": load_cifar10,
    "ptb": load_ptb,
}


# ---------------------------------------------------------------------------- models
def build_mlp_resnet(data: Data, args: argparse.Namespace) -> nn.Module:
    return MLPResNet(math.prod(data.input_shape), hidden_dim=args.hidden_dim,
                     num_blocks=args.num_blocks, num_classes=data.num_classes,
                     drop_prob=args.drop_prob)


def build_cnn(data: Data, args: argparse.Namespace) -> nn.Module:
    """The digits CNN on H x W x C images (MNIST, digits) or C x H x W ones (CIFAR-10)."""
    channels_first = data.extra.get("channels_first", False)
    in_channels, size = (data.input_shape[0], data.input_shape[1]) if channels_first \
        else (data.input_shape[2], data.input_shape[0])
    widths = tuple(int(w) for w in args.cnn_channels.split(","))
    return CNN(in_channels, data.num_classes, image_size=size, channels=widths,
               channels_last=not channels_first)


def build_resnet9(data: Data, args: argparse.Namespace) -> nn.Module:
    if data.input_shape != (3, 32, 32) or data.num_classes != 10:
        raise SystemExit(f"--model resnet9 needs 3 x 32 x 32 images in 10 classes (--dataset "
                         f"cifar10), got images {data.input_shape} from {args.dataset}")
    return ResNet9()


def build_language_model(data: Data, args: argparse.Namespace) -> nn.Module:
    return lm_command.build_language_model(data.num_classes, args)


MODELS: dict[str, Callable[[Data, argparse.Namespace], nn.Module]] = {
    "mlp_resnet": build_mlp_resnet,
    "cnn": build_cnn,
    "resnet9": build_resnet9,
    **dict.fromkeys(lm_command.SEQ_MODELS, build_language_model),
}

# ``MODEL_DEFAULTS[name]``: a model's own defaults for any flag (the command line wins).
MODEL_DEFAULTS: dict[str, dict[str, Any]] = dict(lm_command.MODEL_DEFAULTS)


def add_image_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cnn-channels", default="16,32,64",
                        help="cnn: comma-separated widths of its conv-bn-relu-pool stages")
    parser.add_argument("--augment", action="store_true",
                        help="cifar10: random flips and crops of the training images")


def add_distributed_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nproc", type=positive_int, default=1,
                        help="start this many data-parallel ranks on this machine (mpiexec)")
    parser.add_argument("--sync-bn", action="store_true",
                        help="distributed: BatchNorm over the global batch (SyncBatchNorm)")


TRAIN_OPTIONS: list[Callable[[argparse.ArgumentParser], None]] = [
    add_image_options, lm_command.add_lm_options, add_distributed_options]


# ---------------------------------------------------------------------------- loops
OPTIMIZERS: dict[str, Callable[..., optim.Optimizer]] = {
    "adam": lambda params, a: optim.Adam(params, lr=a.lr, weight_decay=a.weight_decay),
    "sgd": lambda params, a: optim.SGD(params, lr=a.lr, momentum=a.momentum,
                                       weight_decay=a.weight_decay),
}


def make_optimizer(model: nn.Module, args: argparse.Namespace) -> optim.Optimizer:
    return OPTIMIZERS[args.optimizer](model.parameters(), args)


SCHEDULERS: dict[str, Callable[[optim.Optimizer, argparse.Namespace], Any]] = {
    "none": lambda opt, a: None,
    "cosine": lambda opt, a: optim.CosineAnnealingLR(opt, T_max=a.epochs),
}


def make_scheduler(opt: optim.Optimizer, args: argparse.Namespace) -> Any:
    """The learning-rate schedule over ``--epochs`` (stepped once per epoch), or None."""
    return SCHEDULERS[args.scheduler](opt, args)


def epoch_line(entry: dict[str, Any]) -> str:
    """One printed line per epoch: every loss / accuracy / perplexity, lr and time."""
    parts = [f"epoch {entry['epoch']:3d}"]
    for key, value in entry.items():
        if key.startswith(("train_", "test_")):
            parts.append(f"{key} {value:.4f}")
    parts.append(f"lr {entry['lr']:.3g}  {entry['seconds']:.2f}s")
    return "  ".join(parts)


def report(text: str) -> None:
    """Print a line of the run's output (rank 0 only in a distributed job)."""
    if dist.is_main_process():
        print(text, flush=True)


def make_loaders(data: Data, args: argparse.Namespace) -> tuple[Any, Any]:
    """Shuffled training and ordered test batches. In a distributed job each rank reads
    its share (a DistributedSampler; the test images once each) in batches of
    ``--batch-size`` / world size."""
    world = dist.world_size()
    if world == 1:
        return (ndl_data.DataLoader(data.train, args.batch_size, shuffle=True),
                ndl_data.DataLoader(data.test, args.batch_size))
    train_share = dist.DistributedSampler(data.train, seed=args.seed)
    test_share = dist.DistributedSampler(data.test, shuffle=False, pad=False)
    return (ndl_data.DataLoader(data.train, args.batch_size // world, sampler=train_share),
            ndl_data.DataLoader(data.test, args.batch_size // world, sampler=test_share))


def train_classifier(model: nn.Module, data: Data, args: argparse.Namespace) -> History:
    """Mini-batch training with ``needle.train.fit``: softmax loss, shuffled batches,
    a checkpoint after every epoch; data-parallel in a distributed job."""
    opt = make_optimizer(model, args)
    scheduler = make_scheduler(opt, args)
    train_loader, test_loader = make_loaders(data, args)
    if dist.world_size() > 1:  # rank 0's weights everywhere, gradients averaged
        dist.broadcast_parameters(model)
        opt = cast(optim.Optimizer, dist.DistributedOptimizer(opt))  # duck-types it
    return fit(model, train_loader, opt, args.epochs, test_loader=test_loader,
               scheduler=scheduler, resume=args.resume,
               checkpoint=os.path.join(args.out, "checkpoint.safetensors"),
               progress=args.progress, on_epoch=lambda e: report(epoch_line(e)))


def train_language_model(model: nn.Module, data: Data, args: argparse.Namespace) -> History:
    """Truncated back-propagation through time with clipping (``needle.train_lm``)."""
    opt = make_optimizer(model, args)
    return lm_command.train_language_model(model, data, args, opt, make_scheduler(opt, args),
                                         lambda e: print(epoch_line(e), flush=True))


LOOPS: dict[str, Callable[[nn.Module, Data, argparse.Namespace], History]] = {
    "classification": train_classifier,
    "language_model": train_language_model,
}


# ---------------------------------------------------------------------------- outputs
METRIC_NAMES = {"loss": "loss", "acc": "accuracy", "ppl": "perplexity"}


def plot_curves(history: History, path: str) -> None:
    """Loss (left) and the other metrics (right) per epoch, train vs test, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [e["epoch"] for e in history]
    metrics = sorted({k.split("_", 1)[1] for e in history for k in e
                      if k.startswith(("train_", "test_"))}, key=lambda m: m != "loss")
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.5), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for split in ("train", "test"):
            key = f"{split}_{metric}"
            if any(key in e for e in history):
                ax.plot(epochs, [e.get(key, float("nan")) for e in history], marker="o",
                        label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel(METRIC_NAMES.get(metric, metric))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_outputs(model: nn.Module, history: History, out: str) -> None:
    if not dist.is_main_process():
        return
    atomic_write(os.path.join(out, "history.json"), json.dumps(history, indent=1).encode())
    plot_curves(history, os.path.join(out, "curves.png"))
    save(model.state_dict(), os.path.join(out, "model.safetensors"))


# ---------------------------------------------------------------------------- train
def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", choices=sorted(MODELS), default="mlp_resnet")
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="digits")
    parser.add_argument("--data-dir", default=None,
                        help="folder of the data files (default: $NEEDLE_DATA)")
    parser.add_argument("--epochs", type=positive_int, default=10)
    parser.add_argument("--batch-size", type=positive_int, default=100)
    parser.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="adam")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--momentum", type=float, default=0.9, help="SGD only")
    parser.add_argument("--weight-decay", type=float, default=1e-3)
    parser.add_argument("--scheduler", choices=sorted(SCHEDULERS), default="cosine",
                        help="learning-rate schedule over the epochs")
    parser.add_argument("--hidden-dim", type=positive_int, default=100)
    parser.add_argument("--num-blocks", type=int, default=3)
    parser.add_argument("--drop-prob", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/latest", help="output folder")
    parser.add_argument("--resume", default=None, metavar="CKPT",
                        help="continue from a checkpoint written by an earlier run")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction,
                        default=sys.stderr.isatty(), help="tqdm progress bars")
    for add_options in TRAIN_OPTIONS:
        add_options(parser)


def check_distributed(args: argparse.Namespace, world: int) -> None:
    """A data-parallel run of ``world`` ranks must split its batch evenly."""
    if args.batch_size % world:
        raise SystemExit(f"--batch-size {args.batch_size} must be a multiple of the {world} "
                         f"ranks (each rank takes an equal share of every batch)")
    if args.dataset == "ptb":
        raise SystemExit(f"{args.dataset}: the language-model loop runs in one process; "
                         "distributed training covers the classification datasets")


def run_train(args: argparse.Namespace) -> None:
    """Train a model on a dataset, printing a line per epoch; write history, curves, model."""
    if args.resume and not os.path.isfile(args.resume):
        raise SystemExit(f"--resume: no checkpoint file at {args.resume}")
    world = dist.world_size()
    if args.nproc > 1:
        if world > 1:
            raise SystemExit("--nproc starts its own MPI job: leave it out under mpiexec")
        check_distributed(args, args.nproc)
        raise SystemExit(launch(args.nproc, without_option(args.argv, "--nproc")))
    if world > 1:
        check_distributed(args, world)
        report(f"distributed: {world} ranks, global batch {args.batch_size} = {world} x "
               f"{args.batch_size // world} per rank")
    np.random.seed(args.seed)
    data = DATASETS[args.dataset](args)
    if data.note:
        report(data.note)
    model = MODELS[args.model](data, args)
    if args.sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    os.makedirs(args.out, exist_ok=True)
    history = LOOPS[data.kind](model, data, args)
    write_outputs(model, history, args.out)
    report(f"wrote {args.out}/history.json, curves.png, model.safetensors")
    last = history[-1] if history else {}
    if "test_ppl" in last:
        report(f"test perplexity {last['test_ppl']:.1f} on {len(data.test):,} held-out "
               f"{args.dataset} tokens")
    elif "test_acc" in last:
        report(f"test accuracy {last['test_acc']:.4f} on {len(data.test):,} held-out "
               f"{args.dataset} images")


COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None],
                          Callable[[argparse.Namespace], None]]] = {
    "train": (add_train_arguments, run_train),
    "generate": (lm_command.add_generate_arguments, lm_command.run_generate),
    "export": (onnx_command.add_export_arguments, onnx_command.run_export),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m needle",
                                     description="needle's command line (python -m needle "
                                                 "COMMAND --help for a command's options)")
    commands = parser.add_subparsers(dest="command", required=True)
    subparsers = {}
    for name, (add_arguments, run) in COMMANDS.items():
        summary = (run.__doc__ or "").strip().splitlines()[:1]
        sub = subparsers[name] = commands.add_parser(
            name, help=summary[0] if summary else None,
            description=summary[0] if summary else None)
        add_arguments(sub)
        sub.set_defaults(run=run)
    args = parser.parse_args(argv)
    allocator.enable()  # training and generation keep freed memory for reuse
    defaults = MODEL_DEFAULTS.get(getattr(args, "model", None) or "")
    if defaults:  # the model's own defaults, then the command line again on top
        subparsers[args.command].set_defaults(**defaults)
        args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for train --nproc
    with dist.abort_on_error():  # a failing rank ends the whole job, no hang
        args.run(args)


if __name__ == "__main__":
    main()
