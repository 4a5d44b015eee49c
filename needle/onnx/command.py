"""``python -m needle export``: a model trained by ``python -m needle train`` as ONNX.

    python -m needle export --checkpoint runs/digits/model.safetensors --model mlp_resnet \\
        --dataset digits --out model.onnx
    python -m needle export --checkpoint runs/ptb/model.safetensors --model lstm_lm --out lm.onnx

Image models are rebuilt from the same flags as ``train`` (``--hidden-dim``, ``--cnn-channels``
...) for the dataset's image shape; language models from ``language_model.json`` beside the
checkpoint. The graph takes ``--batch-size`` images, or (``--bptt``, ``--batch-size``) token
ids. When ONNX Runtime is installed the command runs the file once and prints how far its
output is from needle's.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import numpy as np

from .. import nn
from ..autograd import Tensor
from ..serialization import load

#: dataset -> (image shape of one sample, classes, channels first)
IMAGE_SHAPES: dict[str, tuple[tuple[int, ...], int, bool]] = {
    "digits": ((8, 8, 1), 10, False),
    "mnist": ((28, 28, 1), 10, False),
    "cifar10": ((3, 32, 32), 10, True),
}


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    from .. import __main__ as cli  # the model table lives with the command line

    parser.add_argument("--checkpoint", required=True,
                        help="model.safetensors (or checkpoint.safetensors) written by train")
    parser.add_argument("--model", choices=sorted(cli.MODELS), default="mlp_resnet",
                        help="the model the checkpoint holds")
    parser.add_argument("--dataset", choices=sorted(IMAGE_SHAPES) + ["ptb"], default=None,
                        help="the data the image model was trained on (default: digits)")
    parser.add_argument("--out", default="model.onnx", help="the ONNX file to write")
    parser.add_argument("--batch-size", type=cli.positive_int, default=1,
                        help="images (or sequences) per call of the exported graph")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (17 or later)")
    parser.add_argument("--hidden-dim", type=int, default=100, help="as given to train")
    parser.add_argument("--num-blocks", type=int, default=3, help="as given to train")
    parser.add_argument("--drop-prob", type=float, default=0.1, help="as given to train")
    for add_options in cli.TRAIN_OPTIONS:
        add_options(parser)


def _image_model(args: argparse.Namespace) -> tuple[nn.Module, np.ndarray]:
    from .. import __main__ as cli

    dataset = args.dataset or "digits"
    if dataset not in IMAGE_SHAPES:
        raise ValueError(f"--model {args.model} is an image model; --dataset must be one of "
                         f"{sorted(IMAGE_SHAPES)}, got {dataset}")
    shape, classes, channels_first = IMAGE_SHAPES[dataset]
    args.dataset = dataset
    data = cli.Data(None, None, input_shape=shape, num_classes=classes,
                    extra={"channels_first": channels_first})
    model = cli.MODELS[args.model](data, args)
    state = load(args.checkpoint)
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # a training checkpoint
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise RuntimeError(f"{args.checkpoint} does not hold a --model {args.model} for "
                           f"--dataset {dataset} with these flags: {error}") from None
    example = np.random.default_rng(0).standard_normal((args.batch_size,) + shape)
    return model, example.astype("float32")


def _language_model(args: argparse.Namespace) -> tuple[nn.Module, np.ndarray]:
    from ..generate import load_language_model

    model, _ = load_language_model(args.checkpoint)
    ids = np.random.default_rng(0).integers(0, model.output_size, (args.bptt, args.batch_size))
    return model, ids


def _runtime_difference(path: str, model: nn.Module, example: np.ndarray) -> str:
    """How far ONNX Runtime's outputs are from needle's, as one phrase."""
    try:
        import onnxruntime
    except ImportError:
        return "ONNX Runtime is not installed: not run"
    from .trace import flatten

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: example})
    outputs = flatten(model(Tensor(example, requires_grad=False)))
    expected = [y.cached_data.numpy() for y in outputs]
    worst = max(float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))
                for a, b in zip(got, expected))
    return f"ONNX Runtime matches needle to {worst:.1e} (largest difference / largest output)"


def run_export(args: argparse.Namespace) -> None:
    """Write a model trained by `train` as an ONNX file (checked with ONNX Runtime)."""
    from ..lm_command import SEQ_MODELS
    from . import export

    try:
        if not os.path.isfile(args.checkpoint):
            raise FileNotFoundError(f"--checkpoint: no file at {args.checkpoint}")
        build = _language_model if args.model in SEQ_MODELS else _image_model
        model, example = build(args)
        model.eval()
        proto = export(model, example, args.out, opset=args.opset)
    except (OSError, ImportError, RuntimeError, ValueError, TypeError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    inputs = ", ".join(f"{i.name} {_shape(i)}" for i in proto.graph.input)
    outputs = ", ".join(f"{o.name} {_shape(o)}" for o in proto.graph.output)
    print(f"wrote {args.out}: {len(proto.graph.node)} ONNX nodes, opset {args.opset}; "
          f"inputs {inputs}; outputs {outputs}")
    print(_runtime_difference(args.out, model, example))


def _shape(value_info: Any) -> tuple[int, ...]:
    return tuple(d.dim_value for d in value_info.type.tensor_type.shape.dim)
