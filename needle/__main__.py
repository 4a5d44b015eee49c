"""needle's command line: ``python -m needle train ...`` (and subcommands plugged in below).

    python -m needle train --model mlp_resnet --dataset digits --epochs 10 --out runs/digits
    python -m needle train --dataset mnist --resume runs/mnist/checkpoint.safetensors
    python -m needle export --checkpoint runs/digits/model.safetensors --out model.onnx

``train`` prints one line per epoch and writes, after every epoch, ``OUT/history.json`` (one
object per epoch), ``OUT/curves.png`` (loss and accuracy per epoch, train vs test) and
``OUT/checkpoint.safetensors`` (``--resume`` continues from it); ``OUT/run.json`` names the
model and dataset, and ``OUT/model.safetensors`` holds the final weights. Ctrl-C stops
cleanly and prints the command that resumes. User errors (missing files, bad flags, a model
that does not fit the dataset or the checkpoint) print one ``error: ...`` line and exit with
status 2; ``--debug`` shows the traceback instead.

``train`` runs data-parallel under an MPI launcher (``mpiexec -n 4 python -m needle train``,
or ``train --nproc 4``, which starts one; see docs/distributed.md): each rank trains on its
share of every batch, and rank 0 alone prints and writes files.

Extension points — each addition is one table entry or one function:

- ``DATASETS[name] = loader(args) -> Data``: a Data holds the train and test datasets and
  the facts models need (``input_shape`` of one sample, ``num_classes``), a ``kind`` that
  picks the training loop, and an optional ``note`` printed before training.
- ``MODELS[name] = builder(data, args) -> nn.Module``; ``MODEL_KINDS[name]`` and
  ``DATASET_KINDS[name]`` (default ``"classification"``) say which models fit which datasets.
- ``DATASET_DEFAULTS``, ``MODEL_DEFAULTS``, ``PAIR_DEFAULTS[(model, dataset)]``: flag
  defaults (the command line wins; a pair beats a model, a model beats a dataset).
- ``LEARNERS[kind] = (model, data, args, opt) -> Learner``: the one training loop
  (``needle.learner``) set up for a kind of data: its loaders, loss and task callbacks.
- ``LOOPS[kind] = loop(model, data, args) -> history``: trains and returns one dict per
  epoch (``epoch, train_loss, test_loss, lr, seconds`` and the kind's own metrics such as
  ``train_acc``/``test_acc`` or ``train_ppl``/``test_ppl``), passing each new entry to
  ``args.log`` (which prints it and rewrites the outputs); both built-in kinds run
  ``train_with_learner``.
- ``TRAIN_OPTIONS``: functions ``(parser) -> None`` adding flags to ``train`` (a model's or
  dataset's own hyper-parameters).
- ``COMMANDS[name] = (add_arguments(parser), run(args) -> None)``: subcommands.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import signal
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, NoReturn, cast

import numpy as np

from . import data as ndl_data
from . import distributed as dist
from . import labs, lm_command, nn, optim, viz
from .backend_ndarray import allocator
from .models import CNN, MLPResNet, ResNet9
from .callbacks import Recorder, SchedulerStep
from .distributed.launch import launch, rerun_command, without_option
from .generate import write_config
from .learner import Learner
from .onnx import command as onnx_command
from .profiler import profile
from .schedules import OneCycleLR
from .serialization import atomic_write, load, save
from .train import fit_callbacks

History = list[dict[str, Any]]


class CLIError(Exception):
    """A user error: ``main`` prints it as one ``error: ...`` line and exits with status 2."""


#: What ``main`` reports as a user error (one line, status 2) rather than a traceback.
USER_ERRORS = (CLIError, OSError, ValueError)


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
    return ndl_data.data_root(args.data_dir)


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
        raise CLIError(f"--model resnet9 needs 3 x 32 x 32 images in 10 classes (--dataset "
                       f"cifar10), got images {data.input_shape} from --dataset {args.dataset}")
    return ResNet9()


def build_language_model(data: Data, args: argparse.Namespace) -> nn.Module:
    return lm_command.build_language_model(data.num_classes, args)


MODELS: dict[str, Callable[[Data, argparse.Namespace], nn.Module]] = {
    "mlp_resnet": build_mlp_resnet,
    "cnn": build_cnn,
    "resnet9": build_resnet9,
    **dict.fromkeys(lm_command.SEQ_MODELS, build_language_model),
}

MODEL_KINDS: dict[str, str] = dict.fromkeys(lm_command.SEQ_MODELS, "language_model")
DATASET_KINDS: dict[str, str] = {"ptb": "language_model"}
KIND_WORDS = {"classification": "labelled images", "language_model": "a text corpus"}

# Flag defaults beyond the parser's (the command line wins): they make the plain commands
# reproduce the README's figures (digits: 20 epochs; the CNN on MNIST: 5 epochs of batch 32).
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {"digits": dict(epochs=20)}
MODEL_DEFAULTS: dict[str, dict[str, Any]] = dict(lm_command.MODEL_DEFAULTS)
PAIR_DEFAULTS: dict[tuple[str, str], dict[str, Any]] = {
    ("cnn", "mnist"): dict(epochs=5, batch_size=32, weight_decay=0.0)}


def check_pair(args: argparse.Namespace) -> None:
    """A clear error when ``--model`` cannot train on ``--dataset`` (before loading any)."""
    model_kind = MODEL_KINDS.get(args.model, "classification")
    data_kind = DATASET_KINDS.get(args.dataset, "classification")
    if model_kind != data_kind:
        fits = sorted(d for d in DATASETS if DATASET_KINDS.get(d, "classification") == model_kind)
        raise CLIError(f"--model {args.model} trains on {KIND_WORDS.get(model_kind, model_kind)} "
                       f"(--dataset {' or '.join(fits)}), but --dataset {args.dataset} is "
                       f"{KIND_WORDS.get(data_kind, data_kind)}")


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


SCHEDULERS: dict[str, Callable[[optim.Optimizer, argparse.Namespace, int], Any]] = {
    "none": lambda opt, a, steps: None,
    "cosine": lambda opt, a, steps: SchedulerStep(optim.CosineAnnealingLR(opt, T_max=a.epochs)),
    "onecycle": lambda opt, a, steps: SchedulerStep(
        OneCycleLR(opt, max_lr=a.lr, epochs=a.epochs, steps_per_epoch=steps), every="batch"),
}


def make_scheduler(opt: optim.Optimizer, args: argparse.Namespace,
                   steps_per_epoch: int) -> SchedulerStep | None:
    """The learning-rate schedule over ``--epochs`` as a callback: cosine steps once per
    epoch, one-cycle once per batch (``--lr`` is its peak); None for ``none``."""
    return SCHEDULERS[args.scheduler](opt, args, steps_per_epoch)


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


def epoch_printer(args: argparse.Namespace) -> Callable[[dict[str, Any]], None]:
    """Logs each epoch (``RunLog``: printed, history and curves written); with
    ``--profile``, the profile of the first epoch after it."""
    def on_epoch(entry: dict[str, Any]) -> None:
        prof = vars(args).pop("profiler", None)
        if prof is not None:  # stopped before the outputs are written: the epoch alone
            prof.__exit__(None, None, None)
        args.log(entry)
        if prof is not None:
            report(f"profile of epoch {entry['epoch']}:\n{prof.table(row_limit=25)}")
    return on_epoch


def classification_learner(model: nn.Module, data: Data, args: argparse.Namespace,
                           opt: optim.Optimizer) -> Learner:
    """Softmax loss over shuffled mini-batches of ``--batch-size``, accuracy recorded."""
    train_loader, test_loader = make_loaders(data, args)
    return Learner(model, train_loader, nn.SoftmaxLoss(), opt, test_loader=test_loader,
                   callbacks=[Recorder()])


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


# ``LEARNERS[kind] = (model, data, args, opt) -> Learner``: the one training loop, set up
# for a kind of data (its loaders, loss and the callbacks the task needs).
LEARNERS: dict[str, Callable[[nn.Module, Data, argparse.Namespace, optim.Optimizer],
                             Learner]] = {
    "classification": classification_learner,
    "language_model": lm_command.language_model_learner,
}


class AgreedStop(KeyboardInterrupt):
    """Ctrl-C seen by StopOnInterrupt, at one batch boundary on every rank."""


class StopOnInterrupt:
    """Ctrl-C stops training at the next batch boundary: the SIGINT handler only records
    it, and ``after_batch`` raises. (Raised inside the handler, it could land in a
    ``__del__``, where Python swallows it with an "Exception ignored" traceback.) In a
    distributed job the ranks agree on the batch (an all-reduce of the flag), so none is
    left waiting in a collective. A second Ctrl-C raises at once."""

    order = -100

    def __init__(self) -> None:
        self.seen = False
        self.previous: Any = None
        try:
            self.previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: leave Python's handler alone
            pass

    def _handle(self, signum: int, frame: Any) -> None:
        if self.seen:
            raise KeyboardInterrupt
        self.seen = True

    def after_batch(self, learner: Learner) -> None:
        if self._anyone_interrupted():
            raise AgreedStop

    def after_fit(self, learner: Learner) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        if self._anyone_interrupted():  # pressed after the last batch
            raise AgreedStop

    def _anyone_interrupted(self) -> bool:
        if dist.world_size() == 1:
            return self.seen
        return bool(dist.all_reduce(np.array([float(self.seen)]))[0])


def distributed_optimizer(opt: optim.Optimizer) -> optim.Optimizer:
    """``opt`` in one process; in a distributed job, wrapped to average the gradients."""
    if dist.world_size() == 1:
        return opt
    return cast(optim.Optimizer, dist.DistributedOptimizer(opt))  # duck-types it


def train_with_learner(model: nn.Module, data: Data, args: argparse.Namespace) -> History:
    """The kind's Learner plus the run's callbacks: the ``--scheduler``, a checkpoint after
    every epoch (``--resume`` continues from one), progress bars, a printed line per epoch;
    in a distributed job the gradients averaged over the ranks (DistributedOptimizer)."""
    opt = make_optimizer(model, args)
    learner = LEARNERS[data.kind](model, data, args, distributed_optimizer(opt))
    scheduler = make_scheduler(opt, args, len(learner.train_loader))  # type: ignore[arg-type]
    for callback in fit_callbacks(scheduler=scheduler, resume=args.resume,
                                  checkpoint=checkpoint_path(args.out), progress=args.progress,
                                  on_epoch=epoch_printer(args)):
        learner.add_callback(callback)
    learner.add_callback(StopOnInterrupt())
    learner.fit(args.epochs)
    return learner.find(Recorder).history


def train_language_model(model: nn.Module, data: Data, args: argparse.Namespace) -> History:
    """``train_with_learner``, after writing ``language_model.json`` for ``generate``."""
    write_config(args.out, lm_command.lm_config(args, data.num_classes),
                 data.extra["dictionary"])
    return train_with_learner(model, data, args)


LOOPS: dict[str, Callable[[nn.Module, Data, argparse.Namespace], History]] = {
    "classification": train_with_learner,
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


def write_history(history: History, out: str) -> None:
    """``curves.png`` and ``history.json`` for the epochs so far (each replaced atomically)."""
    if history:
        curves = os.path.join(out, "curves.png")
        plot_curves(history, curves + ".tmp.png")
        os.replace(curves + ".tmp.png", curves)
    _write_json(history, os.path.join(out, "history.json"))


def write_outputs(model: nn.Module, history: History, out: str) -> None:
    write_history(history, out)
    save(model.state_dict(), os.path.join(out, "model.safetensors"))


def _write_json(value: Any, path: str) -> None:
    atomic_write(path, json.dumps(value, indent=1).encode())


class RunLog:
    """Each finished epoch of a run: printed, added to ``history`` (resumed epochs first)
    and written to ``OUT/history.json`` and ``OUT/curves.png`` at once (by rank 0 alone in
    a distributed job)."""

    def __init__(self, out: str, history: History):
        self.out = out
        self.history = history

    def __call__(self, entry: dict[str, Any]) -> None:
        report(epoch_line(entry))
        if dist.is_main_process():
            write_history(self.history + [entry], self.out)
        self.history.append(entry)  # after the files: Ctrl-C mid-write counts what is there


def checkpoint_path(out: str) -> str:
    return os.path.join(out, "checkpoint.safetensors")


def resume_history(args: argparse.Namespace, model: nn.Module) -> History:
    """The history of ``--resume``'s checkpoint, after checking that it holds this model: a
    clear error names both models (from ``run.json`` beside it) or the tensors that differ."""
    path = args.resume
    if not os.path.isfile(path):
        raise CLIError(f"--resume: no checkpoint file at {path}")
    state = load(path)
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise CLIError(f"--resume {path}: not a checkpoint written by python -m needle train")
    written = _read_run(os.path.dirname(os.path.abspath(path)))
    if written and (written.get("model"), written.get("dataset")) != (args.model, args.dataset):
        raise CLIError(f"--resume {path} is a checkpoint of --model {written.get('model')} "
                       f"on --dataset {written.get('dataset')}, but this run is --model "
                       f"{args.model} on --dataset {args.dataset}: pass the same --model and "
                       f"--dataset to resume it, or drop --resume to start afresh")
    own = {k: v.shape for k, v in model.named_tensors()}
    saved = {k: tuple(np.shape(v)) for k, v in state["model"].items()}
    if own != saved:
        differ = sorted(set(own) ^ set(saved)) or [k for k in own if own[k] != saved[k]]
        raise CLIError(f"--resume {path} holds another model than --model {args.model} "
                       f"(with these flags): {len(saved)} tensors against {len(own)}, first "
                       f"difference {differ[0]!r}; resume with the flags that wrote it")
    return list(state.get("history") or [])


def _read_run(folder: str) -> dict[str, Any]:
    """``run.json`` of an output folder (the model and dataset that wrote it), or {}."""
    try:
        with open(os.path.join(folder, "run.json")) as f:
            found = json.load(f)
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def resume_command(argv: list[str], out: str) -> str:
    """The command line that continues this run from its checkpoint."""
    kept, skip = [], False
    for word in argv:
        if skip or word.startswith("--resume="):
            skip = False
            continue
        if word == "--resume":
            skip = True
            continue
        kept.append(word)
    return shlex.join(["python", "-m", "needle", *kept, "--resume", checkpoint_path(out)])


# ---------------------------------------------------------------------------- train
def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", choices=sorted(MODELS), default="mlp_resnet",
                        help="the model to train")
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="digits",
                        help="the data to train and test on")
    parser.add_argument("--data-dir", default=None,
                        help="folder of the data files (None: $NEEDLE_DATA, else "
                             "../shared/data)")
    parser.add_argument("--epochs", type=positive_int, default=10,
                        help="epochs in total (a resumed run counts its earlier ones)")
    parser.add_argument("--batch-size", type=positive_int, default=100, help="samples per step")
    parser.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="adam",
                        help="the optimiser")
    parser.add_argument("--lr", type=float, default=2e-3, help="learning rate")
    parser.add_argument("--momentum", type=float, default=0.9, help="SGD only")
    parser.add_argument("--weight-decay", type=float, default=1e-3, help="L2 penalty")
    parser.add_argument("--scheduler", choices=sorted(SCHEDULERS), default="cosine",
                        help="learning-rate schedule over the epochs (onecycle: per batch, "
                             "peaking at --lr)")
    parser.add_argument("--hidden-dim", type=positive_int, default=100,
                        help="hidden width (mlp_resnet; the language models' hidden size)")
    parser.add_argument("--num-blocks", type=int, default=3, help="mlp_resnet's residual blocks")
    parser.add_argument("--drop-prob", type=float, default=0.1, help="dropout probability")
    parser.add_argument("--seed", type=int, default=0, help="numpy's global seed")
    parser.add_argument("--out", default="runs/latest", help="output folder")
    parser.add_argument("--resume", default=None, metavar="CKPT",
                        help="continue from a checkpoint written by an earlier run")
    parser.add_argument("--profile", action="store_true",
                        help="print where the first epoch's time went, per op (ndl.profile)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction,
                        default=sys.stderr.isatty(), help="tqdm progress bars")
    for add_options in TRAIN_OPTIONS:
        add_options(parser)


def check_distributed(args: argparse.Namespace, world: int) -> None:
    """A data-parallel run of ``world`` ranks must split its batch evenly."""
    if args.batch_size % world:
        raise CLIError(f"--batch-size {args.batch_size} must be a multiple of the {world} "
                       f"ranks (each rank takes an equal share of every batch)")
    if DATASET_KINDS.get(args.dataset, "classification") != "classification":
        raise CLIError(f"--dataset {args.dataset}: the language-model loop runs in one "
                       "process; distributed training covers the classification datasets")


def start_distributed(args: argparse.Namespace) -> None:
    """``--nproc N``: run this command as an N-rank MPI job and exit with its status. Under
    a launcher: check the split and say so in the first line."""
    world = dist.world_size()
    if args.nproc > 1:
        if world > 1:
            raise CLIError("--nproc starts its own MPI job: leave it out under mpiexec")
        check_distributed(args, args.nproc)
        raise SystemExit(launch(args.nproc, without_option(args.argv, "--nproc")))
    if world > 1:
        check_distributed(args, world)
        report(f"distributed: {world} ranks, global batch {args.batch_size} = {world} x "
               f"{args.batch_size // world} per rank")
    args.progress = args.progress and dist.is_main_process()


def run_train(args: argparse.Namespace) -> None:
    """Train a model on a dataset, printing a line per epoch; write history, curves, model."""
    check_pair(args)
    if args.resume and not os.path.isfile(args.resume):
        raise CLIError(f"--resume: no checkpoint file at {args.resume}")
    start_distributed(args)
    np.random.seed(args.seed)
    data = DATASETS[args.dataset](args)
    if data.note:
        report(data.note)
    model = MODELS[args.model](data, args)
    if args.sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    args.log = RunLog(args.out, resume_history(args, model) if args.resume else [])
    if dist.is_main_process():
        os.makedirs(args.out, exist_ok=True)
        _write_json({"model": args.model, "dataset": args.dataset},
                    os.path.join(args.out, "run.json"))
    if args.profile:  # stopped and printed after the first epoch (epoch_printer)
        args.profiler = profile().__enter__()
    history = LOOPS[data.kind](model, data, args)
    if dist.is_main_process():
        write_outputs(model, history, args.out)
    report(f"wrote {args.out}/history.json, curves.png, model.safetensors")
    last = history[-1] if history else {}
    if "test_ppl" in last:
        report(f"test perplexity {last['test_ppl']:.1f} on {len(data.test):,} held-out "
               f"{args.dataset} tokens")
    elif "test_acc" in last:
        report(f"test accuracy {last['test_acc']:.4f} on {len(data.test):,} held-out "
               f"{args.dataset} images")


def add_graph_arguments(parser: argparse.ArgumentParser) -> None:
    """The model and data flags of ``train``, a small batch, and the picture's path."""
    add_train_arguments(parser)
    parser.set_defaults(out="graph.svg", batch_size=8)
    for action in parser._actions:  # --out names a file here, not a folder
        if action.dest == "out":
            action.help = "the picture: .svg, or .html (a page embedding the SVG)"


def run_graph(args: argparse.Namespace) -> None:
    """Draw one training step's loss graph as SVG or HTML (needle's own layout, no Graphviz)."""
    np.random.seed(args.seed)
    data = DATASETS[args.dataset](args)
    if data.kind != "classification":
        raise CLIError(f"graph draws a classifier's training step; --dataset "
                       f"{args.dataset} trains a {data.kind.replace('_', ' ')}")
    model = MODELS[args.model](data, args)
    if os.path.dirname(args.out):
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
    svg = viz.training_step(model, data.train, args.batch_size, args.out)
    nodes = svg.count('<g class="node')
    print(f"wrote {args.out}: {nodes} nodes, one training step of "
          f"{args.model} on {args.dataset} (batch {args.batch_size})")
# ---------------------------------------------------------------------------- lr-find
def add_lr_find_arguments(parser: argparse.ArgumentParser) -> None:
    add_train_arguments(parser)
    parser.add_argument("--start", type=float, default=1e-7, help="first learning rate")
    parser.add_argument("--end", type=float, default=10.0, help="last learning rate")
    parser.add_argument("--steps", type=positive_int, default=100, help="batches at most")


def run_lr_find(args: argparse.Namespace) -> None:
    """The LR range test: print the suggested rate, write OUT/lr_find.png and lr_find.json."""
    np.random.seed(args.seed)
    data = DATASETS[args.dataset](args)
    if data.note:
        print(data.note, flush=True)
    model = MODELS[args.model](data, args)
    learner = LEARNERS[data.kind](model, data, args, make_optimizer(model, args))
    finder = learner.lr_find(args.start, args.end, args.steps)
    os.makedirs(args.out, exist_ok=True)
    finder.plot(os.path.join(args.out, "lr_find.png"))
    _write_json({"lrs": finder.lrs, "losses": finder.losses, "smoothed": finder.smoothed,
                 "suggestion": finder.suggestion, "steepest": finder.steepest},
                os.path.join(args.out, "lr_find.json"))
    print(f"lr-find: {len(finder.lrs)} batches from {finder.lrs[0]:.3g} to "
          f"{finder.lrs[-1]:.3g}; lowest smoothed loss {min(finder.smoothed):.4f}")
    print(f"suggested learning rate {finder.suggestion:.3g} (steepest descent at "
          f"{finder.steepest:.3g}); wrote {args.out}/lr_find.png, lr_find.json")


COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None],
                          Callable[[argparse.Namespace], None]]] = {
    "train": (add_train_arguments, run_train),
    "generate": (lm_command.add_generate_arguments, lm_command.run_generate),
    "lr-find": (add_lr_find_arguments, run_lr_find),
    "lab": (labs.add_lab_arguments, labs.run_lab_command),
    "export": (onnx_command.add_export_arguments, onnx_command.run_export),
    "graph": (add_graph_arguments, run_graph),
}


class Parser(argparse.ArgumentParser):
    """argparse that shows every flag's default in ``--help`` and reports a bad command
    line as one ``error: ...`` line with exit status 2."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)
        self.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                          help="show the Python traceback of an error (default: off)")

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def defaults_epilog() -> str:
    """The per-dataset, per-model and per-pair defaults, for ``train --help``."""
    def flags(values: dict[str, Any]) -> str:
        return " ".join(f"--{k.replace('_', '-')} {v}" for k, v in values.items())
    lines = [f"--dataset {d}: {flags(v)}" for d, v in DATASET_DEFAULTS.items()]
    lines += [f"--model {m}: {flags(v)}" for m, v in MODEL_DEFAULTS.items()]
    lines += [f"--model {m} --dataset {d}: {flags(v)}" for (m, d), v in PAIR_DEFAULTS.items()]
    return "defaults that differ by dataset and model (the command line wins): " + \
        "; ".join(lines)


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = Parser(prog="python -m needle",
                    description="needle's command line (python -m needle COMMAND --help for "
                                "a command's options)")
    commands = parser.add_subparsers(dest="command", required=True)
    subparsers: dict[str, argparse.ArgumentParser] = {}
    for name, (add_arguments, run) in COMMANDS.items():
        summary = (run.__doc__ or "").strip().splitlines()[:1]
        sub = subparsers[name] = commands.add_parser(
            name, help=summary[0] if summary else None,
            description=summary[0] if summary else None,
            epilog=defaults_epilog() if name == "train" else None)
        add_arguments(sub)
        sub.set_defaults(run=run)
    return parser, subparsers


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line with the model's, dataset's and pair's own defaults under it."""
    parser, subparsers = build_parser()
    args = parser.parse_args(argv)
    allocator.enable()  # training and generation keep freed memory for reuse
    if getattr(args, "model", None) is None:
        return args
    own = subparsers[args.command]
    model_defaults = MODEL_DEFAULTS.get(args.model, {})
    if model_defaults:  # may choose the dataset
        own.set_defaults(**model_defaults)
        args = parser.parse_args(argv)
    defaults = {**DATASET_DEFAULTS.get(args.dataset, {}), **model_defaults,
                **PAIR_DEFAULTS.get((args.model, args.dataset), {})}
    if defaults:
        own.set_defaults(**defaults)
        args = parser.parse_args(argv)
    return args


def describe(error: BaseException) -> str:
    """An exception as one line for ``error: ...``."""
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.strerror or 'cannot open'}: {error.filename}"
    return " ".join(str(error).split()) or type(error).__name__


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    args.argv = argv  # for train --nproc
    with dist.abort_on_error():  # a failing rank ends the whole job with its error, no hang
        run_command(args, argv)


def run_command(args: argparse.Namespace, argv: list[str]) -> None:
    """``args.run(args)``; a user error or Ctrl-C as one message and exit status 2 or 130."""
    debug = getattr(args, "debug", False)
    where = f"rank {dist.rank()}: " if dist.world_size() > 1 else ""
    try:
        args.run(args)
    except KeyboardInterrupt as error:
        if debug:
            raise
        message = interrupted(args, argv)
        if dist.is_main_process():
            print(message, file=sys.stderr, flush=True)
        if isinstance(error, AgreedStop):
            dist.barrier()  # every rank stopped here: rank 0 has said how to resume
        raise SystemExit(130) from None
    except USER_ERRORS as error:
        if debug:
            raise
        print(f"error: {where}{describe(error)}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


def interrupted(args: argparse.Namespace, argv: list[str]) -> str:
    """What Ctrl-C leaves behind, and the command that continues the run."""
    path = checkpoint_path(getattr(args, "out", ""))
    state = load(path) if getattr(args, "log", None) is not None and os.path.isfile(path) \
        else {}
    history = list(state.get("history") or []) if isinstance(state, dict) else []
    if not history:
        return "interrupted: no epoch had finished, so there is nothing to resume"
    if dist.is_main_process():
        write_history(history, args.out)  # the outputs match the checkpoint that resumes
    done = len(history)
    return (f"interrupted during epoch {done + 1}: epochs 1-{done} are saved in "
            f"{checkpoint_path(args.out)}; resume with:\n  "
            f"{rerun_command(resume_command(argv, args.out))}")


if __name__ == "__main__":
    main()
