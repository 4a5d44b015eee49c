"""ONNX export: ONNX Runtime equals needle on random inputs for the five models and for every
converter of the op table; the op table covers every op the models trace; clear errors."""

import numpy as np
import pytest

import needle as ndl
from needle import nn, ops
from needle.models import CNN, LanguageModel, MLPResNet, ResNet9
from needle.onnx import CONVERTERS, UnsupportedOpError, trace
from needle.onnx.converters import UNRESOLVED
from needle.onnx.exporter import trace_eval
from needle.onnx.trace import flatten

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

VOCAB = 50


def _random_batch_norm_statistics(model, rng):
    """Non-trivial running statistics and affine parameters in every BatchNorm."""
    for module in trace_modules(model):
        if isinstance(module, nn.BatchNorm1d):
            dim = module.dim
            module.weight.data = ndl.Tensor(rng.uniform(0.5, 1.5, dim).astype("float32"))
            module.bias.data = ndl.Tensor(rng.normal(0, 0.5, dim).astype("float32"))
            module.running_mean.data = ndl.Tensor(rng.normal(0, 0.5, dim).astype("float32"))
            module.running_var.data = ndl.Tensor(rng.uniform(0.5, 2, dim).astype("float32"))


def trace_modules(module):
    found = [module]
    for child in module.children():
        found.extend(trace_modules(child))
    return found


def _float_input(shape):
    return lambda rng: rng.standard_normal(shape).astype("float32")


def _ids_input(shape, dtype="int64"):
    return lambda rng: rng.integers(0, VOCAB, shape).astype(dtype)


MODELS = {
    "mlp_resnet": (lambda: MLPResNet(64, hidden_dim=32, num_blocks=2), _float_input((5, 8, 8, 1))),
    "digits_cnn": (lambda: CNN(1, 10, image_size=8, channels=(8, 16), channels_last=True),
                   _float_input((4, 8, 8, 1))),
    "resnet9": (lambda: ResNet9(), _float_input((2, 3, 32, 32))),
    "lstm_lm": (lambda: LanguageModel(16, VOCAB, 24, num_layers=2, seq_model="lstm"),
                _ids_input((7, 3))),
    "transformer_lm": (lambda: LanguageModel(16, VOCAB, 24, num_layers=2,
                                             seq_model="transformer", num_head=2, dim_head=8),
                       _ids_input((7, 3))),
}


def _needle_outputs(model, x):
    return [y.numpy() for y in flatten(model(ndl.Tensor(x, requires_grad=False)))]


def assert_close(actual, expected, what):
    """Equal to 1e-4 relative to each output's largest magnitude."""
    scale = max(float(np.abs(expected).max()), 1e-30)
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4 * scale, err_msg=what)


def _check_against_runtime(model, make_input, path, rounds=3, seed=0, opset=17):
    rng = np.random.default_rng(seed)
    example = make_input(rng)
    proto = ndl.onnx.export(model, example, path, opset=opset)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    for k in range(rounds):  # the example, then fresh random inputs of its shape
        x = example if k == 0 else make_input(rng)
        got = session.run(None, {names[0]: x})
        expected = _needle_outputs(model, x)
        assert len(got) == len(expected)
        for i, (a, b) in enumerate(zip(got, expected)):
            assert a.shape == b.shape, f"output {i}: {a.shape} vs {b.shape}"
            assert_close(a, b, f"output {i} of round {k}")
    return proto


@pytest.mark.parametrize("name", sorted(MODELS))
def test_onnx_runtime_equals_needle(name, tmp_path):
    build, make_input = MODELS[name]
    np.random.seed(0)
    model = build()
    _random_batch_norm_statistics(model, np.random.default_rng(1))
    model.eval()
    proto = _check_against_runtime(model, make_input, tmp_path / f"{name}.onnx")
    op_types = {n.op_type for n in proto.graph.node}
    expected = {"mlp_resnet": {"Gemm", "BatchNormalization", "Relu", "Add"},
                "digits_cnn": {"Conv", "Transpose", "BatchNormalization", "MaxPool", "Gemm"},
                "resnet9": {"Conv", "BatchNormalization", "Relu", "Add", "Gemm"},
                "lstm_lm": {"Gather", "MatMul", "Sigmoid", "Tanh", "Split", "Concat"},
                "transformer_lm": {"Gather", "LayerNormalization", "MatMul", "Softmax"}}[name]
    assert expected <= op_types, f"{name} exported without {expected - op_types}"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_traced_op_has_a_mapping(name):
    """A new or renamed op in a model fails here with the op's name."""
    build, make_input = MODELS[name]
    np.random.seed(0)
    traced = trace_eval(build().eval(), make_input(np.random.default_rng(0)))
    assert traced.op_classes(), "the trace recorded no ops"
    unmapped = sorted(c.__name__ for c in traced.op_classes() if c not in CONVERTERS)
    assert not unmapped, f"no ONNX mapping for op {', '.join(unmapped)}"


def test_every_converter_name_resolves():
    """The table names ops by their public names in needle.ops; a moved op must keep one."""
    assert not UNRESOLVED, f"needle.ops has no {UNRESOLVED}: update CONVERTER_NAMES"


def test_float_token_ids_are_cast_for_the_lookup(tmp_path):
    np.random.seed(0)
    model = LanguageModel(8, VOCAB, 12, seq_model="lstm").eval()
    _check_against_runtime(model, _ids_input((5, 2), "float32"), tmp_path / "lm.onnx", rounds=2)


def test_a_language_model_exports_with_its_state_as_inputs(tmp_path):
    """(ids, (h0, c0)) as the example: three inputs, so a deployment can carry the state."""
    np.random.seed(0)
    model = LanguageModel(8, VOCAB, 6, num_layers=2, seq_model="lstm").eval()
    rng = np.random.default_rng(0)
    ids = rng.integers(0, VOCAB, (5, 2))
    state = [rng.standard_normal((2, 2, 6)).astype("float32") for _ in range(2)]
    proto = ndl.onnx.export(model, (ids, tuple(state)), tmp_path / "lm.onnx")
    assert [i.name for i in proto.graph.input] == ["input_0", "input_1", "input_2"]
    session = ort.InferenceSession(str(tmp_path / "lm.onnx"), providers=["CPUExecutionProvider"])
    state = [rng.standard_normal((2, 2, 6)).astype("float32") for _ in range(2)]
    got = session.run(None, {"input_0": ids, "input_1": state[0], "input_2": state[1]})
    logits, (h, c) = model(ndl.Tensor(ids), tuple(ndl.Tensor(s) for s in state))
    for a, b in zip(got, (logits, h, c)):
        assert_close(a, b.numpy(), "with state")


def test_a_model_output_that_is_not_tensors_is_a_clear_error(tmp_path):
    with pytest.raises(TypeError, match="model output must be a Tensor or a tuple of Tensors, "
                                        "got dict"):
        ndl.onnx.export(Lambda(lambda x: {"y": x}), np.ones(2, "float32"), tmp_path / "m.onnx")


class Lambda(nn.Module):
    def __init__(self, fn, *modules):
        super().__init__()
        self.fn = fn
        self.layers = list(modules)

    def forward(self, x):
        return self.fn(x, *self.layers)


def _pool_then_grow(x):
    return ops.conv_transpose(ops.max_pool2d(x, 3, 2, 1), ndl.Tensor(
        np.random.default_rng(3).standard_normal((3, 3, 4, 4)).astype("float32")), 2, 1, 1)


# one small network per converter that the five models do not reach
OPS = {
    "gelu_erf": (lambda x: nn.GELU()(x), (3, 5)),
    "leaky_relu_compare_where": (lambda x: nn.LeakyReLU(0.1)(x), (3, 5)),
    "comparisons": (lambda x: ops.astype(x >= 0.2, "float32") + ops.astype(x != x * 2, "float32")
                    + ops.astype(x < -0.5, "float32"), (3, 5)),
    "divide_power_sqrt": (lambda x: (x * x + 1) ** 0.5 / (x * x + 2) + (x * x + 1) ** 1.5
                          - 3 / (x * x + 1), (4, 3)),
    "exp_log_negate_max": (lambda x: ops.log(ops.exp(-x) + 1) + ops.maximum(x, x * 0.5), (4, 3)),
    "reductions": (lambda x: x.sum((1,)) + x.max((1,)) + ops.logsumexp(x, (1,))
                   + x.sum((1,), keepdims=True).reshape((4,)), (4, 3)),
    "softmax_logsoftmax": (lambda x: ops.softmax(x, 0) + ops.logsoftmax(x), (4, 6)),
    "flip_pad_getitem": (lambda x: ops.pad(ops.flip(x, (1,)), ((1, 0), (0, 2)))[1:, 1:4]
                         + x[0, ::-1] + x[2] + x[np.array([3, 0, 1, 2])], (4, 3)),
    "concatenate_stack_split": (lambda x: ops.concatenate([x, x * 2], 1)
                                + ops.stack(list(ops.split(x, 1)) * 2, 1).reshape((4, 6)), (4, 3)),
    "batched_matmul_transpose": (lambda x: (x @ ops.transpose(x)) @ x.sum((0,)), (2, 4, 3)),
    "conv2d_stride_padding": (lambda x, conv: conv(x), (2, 3, 9, 9),
                              lambda: [nn.Conv2d(3, 4, 3, stride=2, padding=1)]),
    "conv_transpose2d": (lambda x, conv: conv(x), (2, 3, 5, 5),
                         lambda: [nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1,
                                                     output_padding=1)]),
    "pooling": (lambda x, a, m, g: a(x) + m(x) + g(x).broadcast_to((2, 3, 3, 3)),
                (2, 3, 6, 6), lambda: [nn.AvgPool2d(2), nn.MaxPool2d(3, 2, padding=1),
                                        nn.AdaptiveAvgPool2d(1)]),
    "pool_then_conv_transpose_nhwc": (_pool_then_grow, (2, 7, 7, 4)),
    "gru_rnn_cells": (lambda x, gru, rnn: gru(x)[0] + rnn(x)[0], (4, 2, 3),
                      lambda: [nn.GRU(3, 5), nn.RNN(3, 5, num_layers=2, nonlinearity="relu")]),
    "layer_norm_batch_norm_tanh_sigmoid": (
        lambda x, ln, bn: ops.tanh(ln(x)) + ops.sigmoid(bn(x)), (5, 4),
        lambda: [nn.LayerNorm1d(4), nn.BatchNorm1d(4)]),
    "normalize_other_axes": (lambda x: ops.normalize(x, (0, 2), 1e-5) + ops.normalize(x, -1),
                             (3, 4, 5)),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_each_converter_against_onnx_runtime(name, tmp_path):
    fn, shape, *modules = OPS[name]
    np.random.seed(0)
    model = Lambda(fn, *(modules[0]() if modules else [])).eval()
    _check_against_runtime(model, _float_input(shape), tmp_path / f"{name}.onnx", rounds=2)


def test_training_mode_with_dropout_warns_and_exports_eval_behaviour(tmp_path):
    np.random.seed(0)
    model = MLPResNet(64, hidden_dim=32, num_blocks=2, drop_prob=0.5)
    _random_batch_norm_statistics(model, np.random.default_rng(1))
    x = np.random.default_rng(0).standard_normal((6, 64)).astype("float32")
    with pytest.warns(UserWarning, match="training mode with 2 active Dropout"):
        ndl.onnx.export(model, x, tmp_path / "m.onnx")
    assert all(m.training for m in trace_modules(model)), "export changed the model's mode"
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x})[0]
    model.eval()
    assert_close(got, _needle_outputs(model, x)[0], "eval behaviour")


class Dilated(nn.Module):
    def forward(self, x):
        return ops.dilate(x, (0,), 1)


def test_an_op_without_mapping_is_a_clear_error_naming_it(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"previous")
    with pytest.raises(UnsupportedOpError, match="no ONNX mapping for op Dilate"):
        ndl.onnx.export(Dilated(), np.ones((2, 3), "float32"), path)
    assert path.read_bytes() == b"previous", "a failed export must not touch the old file"


def test_bad_arguments_are_clear_errors(tmp_path):
    with pytest.raises(TypeError, match="needs a needle nn.Module"):
        ndl.onnx.export(lambda x: x, np.ones(3, "float32"), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="opset 17 or later"):
        ndl.onnx.export(nn.ReLU(), np.ones(3, "float32"), tmp_path / "m.onnx", opset=13)


def test_trace_records_ops_the_graph_would_not():
    """Comparisons are not differentiable, yet the export must compute them from the input."""
    traced = trace(nn.LeakyReLU(), np.ones((2, 2), "float32"))
    assert {ops.Compare, ops.Where} <= traced.op_classes()


def test_opset_18_moves_reduce_axes_to_an_input(tmp_path):
    np.random.seed(0)
    model = Lambda(lambda x: x.max((1,)) + ops.normalize(x, (0,)).sum((1,)))
    _check_against_runtime(model.eval(), _float_input((3, 4)), tmp_path / "m.onnx", rounds=1)
    proto = _check_against_runtime(model, _float_input((3, 4)), tmp_path / "m18.onnx", rounds=2,
                                   opset=18)
    reduce_max = next(n for n in proto.graph.node if n.op_type == "ReduceMax")
    assert len(reduce_max.input) == 2 and not reduce_max.attribute[1:]
