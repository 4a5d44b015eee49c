"""The code of ``../shared/seeds/002_*.txt`` (a learner's CMU 10-414 hw2 solutions), pasted
against ``import needle as ndl`` with its ``array_api`` as numpy, runs and trains.

Below, between the two rulers, is the seed's code as it stands there (only re-indented from
the page, with its Chinese comments dropped); the namespaces ``nn``, ``ops``, ``init`` and
``optim`` around it give the seed's classes and needle's others, as the hw2 package layout
did. Its ``train_mnist`` runs on files written from the real MNIST test images (8,000 as
"train", 2,000 as "t10k"); its ``epoch`` and ``DataLoader`` also train on real digits.
"""

import gzip
import math
import os
import types
from typing import List, Optional

import numpy as np
import pytest

import needle as ndl
from needle.autograd import Tensor, TensorOp
from needle.data import Dataset
from needle.data.transforms import Transform
from needle.nn import Module, Parameter
from needle.optim import Optimizer

array_api = np  # the seed's backend: numpy functions on needle's NDArrays
init = types.SimpleNamespace(**vars(ndl.init))
ops = types.SimpleNamespace(**vars(ndl.ops))
nn = types.SimpleNamespace(**vars(ndl.nn))
rand, randn = ndl.init.rand, ndl.init.randn


# ================================================================= the seed's code (002)
def xavier_uniform(fan_in, fan_out, gain=1.0, **kwargs):
    a = gain * math.sqrt(6 / (fan_in + fan_out))
    out = rand(fan_in, fan_out, low=-a, high=a)
    return out


def xavier_normal(fan_in, fan_out, gain=1.0, **kwargs):
    std = gain * math.sqrt(2 / (fan_in + fan_out))
    out = randn(fan_in, fan_out, mean=0, std=std)
    return out


def kaiming_uniform(fan_in, fan_out, nonlinearity="relu", **kwargs):
    assert nonlinearity == "relu", "Only relu supported currently"
    gain = math.sqrt(2)
    bound = gain * math.sqrt(3 / fan_in)
    out = rand(fan_in, fan_out, low=-bound, high=bound)
    return out


def kaiming_normal(fan_in, fan_out, nonlinearity="relu", **kwargs):
    assert nonlinearity == "relu", "Only relu supported currently"
    gain = math.sqrt(2)
    std = gain / math.sqrt(fan_in)
    out = randn(fan_in, fan_out, mean=0, std=std)
    return out


class Linear(Module):
    def __init__(self, in_features, out_features, bias=True, device=None, dtype="float32"):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.have_bias = bias
        self.weight = Parameter(init.kaiming_uniform(in_features, out_features, device=device,
                                                     dtype=dtype))
        if self.have_bias:
            self.bias = Parameter(init.kaiming_uniform(out_features, 1, device=device,
                                                       dtype=dtype).reshape((1, out_features)))

    def forward(self, X: Tensor) -> Tensor:
        if self.have_bias:
            bias = ops.broadcast_to(self.bias, (X.shape[0], self.out_features))
            return ops.matmul(X, self.weight) + bias
        else:
            return ops.matmul(X, self.weight)


class Sequential(Module):
    def __init__(self, *modules):
        super().__init__()
        self.modules = modules

    def forward(self, x: Tensor) -> Tensor:
        input = x
        for module in self.modules:
            input = module(input)
        return input


class LogSumExp(TensorOp):
    def __init__(self, axes: Optional[tuple] = None):
        self.axes = axes

    def compute(self, Z):
        max_z_f = array_api.max(Z, axis=self.axes, keepdims=False)
        max_z_t = array_api.max(Z, axis=self.axes, keepdims=True)
        tmp = array_api.sum(array_api.exp(Z - max_z_t), axis=self.axes, keepdims=False)
        out = array_api.log(tmp) + max_z_f
        return out

    def gradient(self, out_grad, node):
        input = node.inputs[0].cached_data
        max_val_t = array_api.max(input, axis=self.axes, keepdims=True)
        exp_val = array_api.exp(input - max_val_t)
        sum_val = array_api.sum(exp_val, axis=self.axes, keepdims=False)
        grad_log = out_grad.cached_data / sum_val
        shape = list(node.inputs[0].shape)
        axes = self.axes
        if axes is None:
            axes = list(range(len(shape)))
        for _ in axes:
            shape[_] = 1
        grad_sum = array_api.broadcast_to(array_api.reshape(grad_log, shape),
                                          node.inputs[0].shape)
        grad_exp = grad_sum * exp_val
        return Tensor(grad_exp)


class SoftmaxLoss(Module):
    def forward(self, logits: Tensor, y: Tensor):
        softmax = ops.logsumexp(logits, axes=(1,))
        shape = logits.shape
        batch_size = shape[0]
        num_class = shape[1]
        y_one_hot = init.one_hot(num_class, y)
        I = ops.summation(logits * y_one_hot, axes=(1,))  # noqa: E741
        return ops.summation(softmax - I) / batch_size


class LayerNorm1d(Module):
    def __init__(self, dim, eps=1e-5, device=None, dtype="float32"):
        super().__init__()
        self.dim = dim
        self.eps = eps
        self.weight = Parameter(init.ones(dim, device=device, dtype=dtype))
        self.bias = Parameter(init.zeros(dim, device=device, dtype=dtype))

    def forward(self, x: Tensor) -> Tensor:
        batch_size = x.shape[0]  # noqa: F841
        features = x.shape[1]
        sum_x = ops.summation(x, 1)
        mean_x = ops.divide_scalar(sum_x, features)
        mean_x_reshape = ops.reshape(mean_x, (-1, 1))
        E = ops.broadcast_to(mean_x_reshape, x.shape)
        V_inner = ops.power_scalar(x - E, 2)
        V_sum = ops.summation(V_inner, 1)
        V_mean = ops.divide_scalar(V_sum, features)
        V = ops.add_scalar(V_mean, self.eps)
        sqrt_Var = ops.power_scalar(V, 1 / 2)
        sqrt_Var_reshape = ops.reshape(sqrt_Var, (-1, 1))
        sqrt_Var_reshape_brocst = ops.broadcast_to(sqrt_Var_reshape, x.shape)
        X = (x - E) / sqrt_Var_reshape_brocst
        broadcast_weight = ops.broadcast_to(ops.reshape(self.weight, (1, -1)), x.shape)
        broadcast_bias = ops.broadcast_to(ops.reshape(self.bias, (1, -1)), x.shape)
        out = broadcast_weight * X + broadcast_bias
        return out


class BatchNorm1d(Module):
    def __init__(self, dim, eps=1e-5, momentum=0.1, device=None, dtype="float32"):
        super().__init__()
        self.dim = dim
        self.eps = eps
        self.momentum = momentum
        self.weight = Parameter(init.ones(dim, device=device, dtype=dtype))
        self.bias = Parameter(init.zeros(dim, device=device, dtype=dtype))
        self.running_mean = init.zeros(dim, device=device, dtype=dtype)
        self.running_var = init.ones(dim, device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        batch_size = x.shape[0]
        broadcast_weight = ops.broadcast_to(ops.reshape(self.weight, (1, -1)), x.shape)
        broadcast_bias = ops.broadcast_to(ops.reshape(self.bias, (1, -1)), x.shape)
        if self.training:
            sum_x = ops.summation(x, 0)
            mean_x = ops.divide_scalar(sum_x, batch_size)
            broadcast_mean = ops.broadcast_to(mean_x, x.shape)
            pow_Var = ops.power_scalar(x - broadcast_mean, 2)
            sum_Var = ops.summation(pow_Var, 0)
            Var = ops.divide_scalar(sum_Var, batch_size)
            Var_add_eps = ops.power_scalar(ops.add_scalar(Var, self.eps), 1 / 2)
            broadcast_var = ops.broadcast_to(Var_add_eps, x.shape)
            out = broadcast_weight * (x - broadcast_mean) / broadcast_var + broadcast_bias
            self.running_mean = (1 - self.momentum) * self.running_mean + \
                self.momentum * mean_x
            self.running_var = (1 - self.momentum) * self.running_var + self.momentum * Var
        else:
            broadcast_running_mean = ops.broadcast_to(ops.reshape(self.running_mean, (1, -1)),
                                                      x.shape)
            running_var_add_eps = ops.power_scalar(ops.add_scalar(self.running_var, self.eps),
                                                   1 / 2)
            broadcast_running_var = ops.broadcast_to(ops.reshape(running_var_add_eps, (1, -1)),
                                                     x.shape)
            out = broadcast_weight * (x - broadcast_running_mean) / broadcast_running_var + \
                broadcast_bias
        return out


class Dropout(Module):
    def __init__(self, p=0.5):
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            mask = init.randb(*x.shape, p=1 - self.p) / (1 - self.p)
            x = x * mask
        return x


class Residual(Module):
    def __init__(self, fn: Module):
        super().__init__()
        self.fn = fn

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x) + x


class SGD(Optimizer):
    def __init__(self, params, lr=0.01, momentum=0.0, weight_decay=0.0):
        super().__init__(params)
        self.lr = lr
        self.momentum = momentum
        self.u = {}
        self.weight_decay = weight_decay

    def step(self):
        for param in self.params:
            grad = self.u.get(param, 0) * self.momentum + (1 - self.momentum) * (
                param.grad.data + self.weight_decay * param.data)
            grad = ndl.Tensor(grad, dtype=param.dtype)
            self.u[param] = grad
            param.data = param.data - self.lr * grad


class Adam(Optimizer):
    def __init__(self, params, lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
        super().__init__(params)
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weight_decay = weight_decay
        self.t = 0
        self.m = {}
        self.v = {}

    def step(self):
        self.t += 1
        for param in self.params:
            if param.grad is not None:
                grad_with_L2rgl = param.grad.data + self.weight_decay * param.data
            else:
                grad_with_L2rgl = self.weight_decay * param.data
            new_m = self.beta1 * self.m.get(param, 0) + (1 - self.beta1) * grad_with_L2rgl.data
            new_v = self.beta2 * self.v.get(param, 0) + (1 - self.beta2) * \
                grad_with_L2rgl.data * grad_with_L2rgl.data
            self.m[param] = new_m
            self.v[param] = new_v
            m_hat = new_m.data / (1 - self.beta1 ** self.t)
            v_hat = new_v.data / (1 - self.beta2 ** self.t)
            out = param.data - self.lr * m_hat / (ndl.ops.power_scalar(v_hat, 1 / 2) + self.eps)
            out = ndl.Tensor(out, dtype=param.dtype)
            param.data = out


class RandomFlipHorizontal(Transform):
    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, img):
        flip_img = np.random.rand() < self.p
        if flip_img:
            img = img[:, ::-1, :]
        return img


class RandomCrop(Transform):
    def __init__(self, padding=3):
        self.padding = padding

    def __call__(self, img):
        shift_x, shift_y = np.random.randint(low=-self.padding, high=self.padding + 1, size=2)
        H, W, C = img.shape
        pad = np.zeros((H + 2 * self.padding, W + 2 * self.padding, C))
        pad[self.padding:self.padding + H, self.padding:self.padding + W, :] = img
        x = shift_x + self.padding
        y = shift_y + self.padding
        img = pad[x:x + H, y:y + W, :]
        return img


class MNISTDataset(Dataset):
    def __init__(self, image_filename: str, label_filename: str,
                 transforms: Optional[List] = None):
        self.images, self.labels = parse_mnist(image_filename, label_filename)
        self.transforms = transforms

    def __getitem__(self, index) -> object:
        img = self.images[index]
        return self.apply_transforms(img), self.labels[index]

    def __len__(self) -> int:
        return self.images.shape[0]


def parse_mnist(image_filename, label_filename):
    with gzip.open(image_filename, 'rb') as img_f:
        img_f.read(4)
        num_images = int.from_bytes(img_f.read(4), 'big')
        rows = int.from_bytes(img_f.read(4), 'big')
        cols = int.from_bytes(img_f.read(4), 'big')
        image_data = img_f.read(num_images * rows * cols)
        X = np.frombuffer(image_data, dtype=np.uint8).astype(np.float32)
        X = X.reshape(num_images, rows, cols, 1)
        X /= 255.0
    with gzip.open(label_filename, 'rb') as lb_f:
        lb_f.read(4)
        num_labels = int.from_bytes(lb_f.read(4), 'big')  # noqa: F841
        lable_data = lb_f.read(num_labels)
        y = np.frombuffer(lable_data, dtype=np.uint8)
    return X, y


class DataLoader:
    dataset: Dataset
    batch_size: Optional[int]

    def __init__(self, dataset: Dataset, batch_size: Optional[int] = 1, shuffle: bool = False):
        self.dataset = dataset
        self.shuffle = shuffle
        self.batch_size = batch_size
        if not self.shuffle:
            self.ordering = np.array_split(np.arange(len(dataset)),
                                           range(batch_size, len(dataset), batch_size))

    def __iter__(self):
        if self.shuffle:
            self.ordering = np.array_split(np.random.permutation(len(self.dataset)),
                                           range(self.batch_size, len(self.dataset),
                                                 self.batch_size))
        self.idx = -1
        return self

    def __next__(self):
        self.idx += 1
        if self.idx >= len(self.ordering):
            self.idx = -1
            raise StopIteration()
        samples = self.dataset[self.ordering[self.idx]]
        samples = [Tensor(s) for s in samples]
        return samples


def ResidualBlock(dim, hidden_dim, norm=nn.BatchNorm1d, drop_prob=0.1):
    main = nn.Sequential(
        nn.Linear(dim, hidden_dim),
        norm(hidden_dim),
        nn.ReLU(),
        nn.Dropout(drop_prob),
        nn.Linear(hidden_dim, dim),
        norm(dim),
    )
    return nn.Sequential(nn.Residual(main), nn.ReLU())


def MLPResNet(dim, hidden_dim=100, num_blocks=3, num_classes=10, norm=nn.BatchNorm1d,
              drop_prob=0.1):
    layers = []
    layers.append(nn.Flatten())
    layers.append(nn.Linear(dim, hidden_dim))
    layers.append(nn.ReLU())
    for i in range(num_blocks):
        layers.append(ResidualBlock(hidden_dim, hidden_dim // 2, norm, drop_prob))
    layers.append(nn.Linear(hidden_dim, num_classes))
    return nn.Sequential(*layers)


def epoch(dataloader, model, opt=None):
    np.random.seed(4)
    if opt is None:
        model.eval()
    else:
        model.train()
    loss_fuc = nn.SoftmaxLoss()
    acc_num = 0
    losses = []
    for X, y in dataloader:
        out = model(X)
        loss = loss_fuc(out, y)
        if opt is not None:
            loss.backward()
            opt.step()
        losses.append(loss.numpy())
        acc_num += (out.numpy().argmax(axis=1) == y.numpy()).sum()
    return 1 - acc_num / len(dataloader.dataset), np.mean(losses)


def train_mnist(batch_size=100, epochs=10, optimizer=ndl.optim.Adam, lr=0.001,
                weight_decay=0.001, hidden_dim=100, data_dir="data"):
    np.random.seed(4)
    trainning_dataset = ndl.data.MNISTDataset(
        os.path.join(data_dir, "train-images-idx3-ubyte.gz"),
        os.path.join(data_dir, "train-labels-idx1-ubyte.gz")
    )
    trainning_data_loader = ndl.data.DataLoader(trainning_dataset, batch_size, shuffle=True)
    test_dataset = ndl.data.MNISTDataset(
        os.path.join(data_dir, "t10k-images-idx3-ubyte.gz"),
        os.path.join(data_dir, "t10k-labels-idx1-ubyte.gz")
    )
    test_data_loader = ndl.data.DataLoader(test_dataset, batch_size)
    shape = test_data_loader.dataset.images.shape
    dim = shape[1] * shape[2]
    print(dim)
    model = MLPResNet(dim=dim, hidden_dim=hidden_dim)
    opt = optimizer(model.parameters(), lr=lr, weight_decay=weight_decay)
    train_err, train_loss = 0, 0
    test_err, test_loss = 0, 0
    for i in range(epochs):
        train_err, train_loss = epoch(trainning_data_loader, model, opt)
        print("Epoch %d: Train err: %f, Train loss: %f" % (i, train_err, train_loss))
        test_err, test_loss = epoch(test_data_loader, model)
    return train_err, train_loss, test_err, test_loss
# ================================================================= end of the seed's code


# The hw2 package layout: the seed's classes in their modules, needle's for the rest.
for _name in ("xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal"):
    setattr(init, _name, globals()[_name])
ops.LogSumExp = LogSumExp
ops.logsumexp = lambda a, axes=None: LogSumExp(axes)(a)
for _cls in (Linear, Sequential, SoftmaxLoss, LayerNorm1d, BatchNorm1d, Dropout, Residual):
    setattr(nn, _cls.__name__, _cls)
OPTIMIZERS = {"SGD": SGD, "Adam": Adam}
ResidualBlock.__defaults__ = (BatchNorm1d, 0.1)
MLPResNet.__defaults__ = (100, 3, 10, BatchNorm1d, 0.1)

MNIST = os.path.join(ndl.data.data_root(), "mnist")
HAS_MNIST = os.path.isfile(os.path.join(MNIST, "t10k-images-idx3-ubyte.gz"))


def _write_idx(path, magic, array):
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _split_mnist(folder, n_train):
    """Real MNIST test images as the seed's four files: the first n_train as "train"."""
    images, labels = parse_mnist(os.path.join(MNIST, "t10k-images-idx3-ubyte.gz"),
                                 os.path.join(MNIST, "t10k-labels-idx1-ubyte.gz"))
    raw = np.round(images[..., 0] * 255)
    for prefix, part in (("train", slice(0, n_train)), ("t10k", slice(n_train, None))):
        _write_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte.gz"), 2051, raw[part])
        _write_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte.gz"), 2049, labels[part])


@pytest.mark.slow
@pytest.mark.skipif(not HAS_MNIST, reason="needs the MNIST IDX files in $NEEDLE_DATA/mnist")
def test_the_seeds_train_mnist_trains_on_real_mnist(tmp_path, capsys):
    _split_mnist(tmp_path, 8000)
    train_err, train_loss, test_err, test_loss = train_mnist(
        batch_size=100, epochs=2, optimizer=Adam, lr=0.001, weight_decay=0.001,
        hidden_dim=100, data_dir=str(tmp_path))
    printed = capsys.readouterr().out
    print(train_err, train_loss, test_err, test_loss)
    assert printed.startswith("784\n") and "Epoch 1: Train err" in printed
    assert test_err < 0.10 and train_err < 0.15, (train_err, test_err)
    assert test_loss < 0.4


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_the_seeds_epoch_and_dataloader_train_on_digits(optimizer):
    pytest.importorskip("sklearn")
    np.random.seed(0)
    train = DataLoader(ndl.data.Digits(train=True), 100, shuffle=True)
    test = DataLoader(ndl.data.Digits(train=False), 100)
    model = MLPResNet(64, hidden_dim=64, num_blocks=2)
    lr = {"SGD": 0.1, "Adam": 0.002}[optimizer]
    opt = OPTIMIZERS[optimizer](model.parameters(), lr=lr, weight_decay=0.001)
    untrained_err, untrained_loss = epoch(test, model)
    for _ in range(4):
        train_err, train_loss = epoch(train, model, opt)
    test_err, test_loss = epoch(test, model)
    assert untrained_err > 0.6 and test_err < 0.15, (untrained_err, test_err)
    assert test_loss < untrained_loss / 3


def test_the_seeds_layers_match_needles():
    """The seed's layers and loss compute what needle's do (same seed, same numbers)."""
    rng = np.random.default_rng(0)
    x = ndl.Tensor(rng.standard_normal((8, 5)).astype(np.float32))
    y = ndl.Tensor(rng.integers(0, 3, 8))
    pairs = [(lambda: Linear(5, 3), lambda: ndl.nn.Linear(5, 3)),
             (lambda: LayerNorm1d(5), lambda: ndl.nn.LayerNorm1d(5)),
             (lambda: BatchNorm1d(5), lambda: ndl.nn.BatchNorm1d(5))]
    for seed_layer, needle_layer in pairs:
        np.random.seed(1)
        ours = seed_layer()
        np.random.seed(1)
        theirs = needle_layer()
        np.testing.assert_allclose(ours(x).numpy(), theirs(x).numpy(), rtol=1e-5, atol=1e-6)
    logits = ndl.Tensor(rng.standard_normal((8, 3)).astype(np.float32))
    np.testing.assert_allclose(SoftmaxLoss()(logits, y).numpy(),
                               ndl.nn.SoftmaxLoss()(logits, y).numpy(), rtol=1e-6)
    mine = ndl.Tensor(logits.numpy())
    LogSumExp((1,))(mine).backward()  # the seed's gradient, numpy functions on NDArrays
    want = np.exp(logits.numpy()) / np.exp(logits.numpy()).sum(1, keepdims=True)
    np.testing.assert_allclose(mine.grad.numpy(), want, rtol=1e-5)
    np.random.seed(2)
    crop = RandomCrop(2)(np.ones((4, 4, 1), np.float32))
    assert crop.shape == (4, 4, 1)
    assert xavier_uniform(3, 4).shape == (3, 4) and kaiming_normal(3, 4).shape == (3, 4)
