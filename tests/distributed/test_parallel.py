"""Data parallelism: W ranks x batch 128/W step exactly like 1 process x batch 128 (with
LayerNorm, and SyncBatchNorm against BatchNorm1d; plain BatchNorm differs), SyncBatchNorm's
forward and backward against BatchNorm on the global batch, broadcast_parameters, and
DistributedOptimizer's averaging, zero-filling, grouping and errors."""

import numpy as np
import pytest

import needle as ndl
from needle import distributed as dist
from needle import nn
from needle.distributed import DistributedOptimizer, DistributedSampler

W, R = dist.world_size(), dist.rank()
GLOBAL_BATCH, STEPS, DIM = 128, 5, 20


def mlp_resnet(norm):
    np.random.seed(0)  # the same initial weights on every rank and in the reference
    return ndl.models.MLPResNet(DIM, hidden_dim=32, num_blocks=2, num_classes=5, norm=norm,
                                drop_prob=0.0)


def dataset():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((GLOBAL_BATCH * STEPS, DIM)).astype(np.float32)
    y = rng.integers(0, 5, len(x))
    return ndl.data.NDArrayDataset(x, y)


def train(model, loader):
    opt = ndl.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    opt = DistributedOptimizer(opt)
    for x, y in loader:
        opt.reset_grad()
        nn.SoftmaxLoss()(model(x), y).backward()
        opt.step()
    return model.state_dict()


def distributed_and_reference(norm, reference_norm):
    """The state after STEPS steps on W ranks x GLOBAL_BATCH / W samples (from a
    DistributedSampler), and after the same steps in this process alone on the full
    global batches (the sampler's order, GLOBAL_BATCH at a time)."""
    data = dataset()
    sampler = DistributedSampler(data, seed=4)
    local = ndl.data.DataLoader(data, GLOBAL_BATCH // W, sampler=sampler)
    ours = train(mlp_resnet(norm), local)
    order = sampler.order()
    full = ndl.data.DataLoader(data, GLOBAL_BATCH, sampler=order)
    return ours, train_alone(mlp_resnet(reference_norm), full)


def train_alone(model, loader):
    opt = ndl.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    for x, y in loader:
        opt.reset_grad()
        nn.SoftmaxLoss()(model(x), y).backward()
        opt.step()
    return model.state_dict()


def max_difference(a, b):
    assert a.keys() == b.keys()
    return max(float(np.abs(a[k] - b[k]).max()) for k in a)


def test_layernorm_model_steps_like_one_process_on_the_global_batch():
    ours, reference = distributed_and_reference(nn.LayerNorm1d, nn.LayerNorm1d)
    assert max_difference(ours, reference) < 1e-5
    assert max_difference(ours, mlp_resnet(nn.LayerNorm1d).state_dict()) > 1e-2  # it moved


def test_sync_batchnorm_steps_like_batchnorm_on_the_global_batch():
    ours, reference = distributed_and_reference(nn.SyncBatchNorm, nn.BatchNorm1d)
    assert max_difference(ours, reference) < 1e-5  # running statistics included


def test_plain_batchnorm_uses_local_statistics_and_so_differs():
    if W == 1:
        pytest.skip("with one rank the local batch is the global one")
    ours, reference = distributed_and_reference(nn.BatchNorm1d, nn.BatchNorm1d)
    assert max_difference(ours, reference) > 1e-3


@pytest.mark.parametrize("shape", [(8, 5), (4, 3, 5, 6)])
def test_sync_batchnorm_forward_and_backward_match_batchnorm(shape):
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((W * shape[0], *shape[1:])) * 3 + 1).astype(np.float32)
    projection = rng.standard_normal(x.shape).astype(np.float32)
    mine = slice(R * shape[0], (R + 1) * shape[0])
    reference = (nn.BatchNorm1d if len(shape) == 2 else nn.BatchNorm2d)(shape[1])
    reference.weight.data = ndl.Tensor(rng.uniform(0.5, 2, shape[1]).astype(np.float32))
    sync = nn.SyncBatchNorm(shape[1])
    sync.weight.data = reference.weight.data
    x_all, x_mine = ndl.Tensor(x), ndl.Tensor(x[mine])
    out_all = reference(x_all)
    (out_all * ndl.Tensor(projection)).sum().backward()
    out_mine = sync(x_mine)
    (out_mine * ndl.Tensor(projection[mine])).sum().backward()
    np.testing.assert_allclose(out_mine.numpy(), out_all.numpy()[mine], atol=2e-6)
    np.testing.assert_allclose(x_mine.grad.numpy(), x_all.grad.numpy()[mine], atol=2e-6)
    for param in ("weight", "bias"):  # local sums; their sum over the ranks is the gradient
        total = dist.all_reduce(getattr(sync, param).grad.numpy().copy())
        np.testing.assert_allclose(total, getattr(reference, param).grad.numpy(), atol=1e-5)
    for stat in ("running_mean", "running_var"):
        np.testing.assert_allclose(getattr(sync, stat).numpy(), getattr(reference, stat).numpy(),
                                   atol=1e-6)
    sync.eval(), reference.eval()
    np.testing.assert_allclose(sync(x_mine).numpy(), reference(x_all).numpy()[mine], atol=2e-6)


def test_convert_sync_batchnorm_swaps_every_batchnorm_and_keeps_its_state():
    model = mlp_resnet(nn.BatchNorm1d)
    params = model.parameters()
    x = ndl.Tensor(np.random.default_rng(3).standard_normal((6, DIM)).astype(np.float32))
    model.eval()
    before = model(x).numpy()
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    kinds = [type(m) for m in converted.submodules()]
    assert nn.BatchNorm1d not in kinds and kinds.count(nn.SyncBatchNorm) == 4
    assert all(a is b for a, b in zip(converted.parameters(), params))
    np.testing.assert_array_equal(converted(x).numpy(), before)
    with pytest.raises(ValueError, match=r"SyncBatchNorm\(4\) expects input \(N, 4, \.\.\.\)"):
        nn.SyncBatchNorm(4)(ndl.Tensor(np.zeros((2, 3), dtype=np.float32)))


def test_broadcast_parameters_copies_rank_zero_weights_and_buffers():
    np.random.seed(10 + R)  # a different initialisation on every rank
    norm = nn.BatchNorm1d(4)
    model = nn.Sequential(nn.Linear(3, 4), norm)
    norm.running_mean.data = ndl.Tensor(np.full(4, float(R), dtype=np.float32))
    np.random.seed(10)
    rank0 = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).state_dict()
    dist.broadcast_parameters(model)
    state = model.state_dict()
    assert max_difference(state, rank0) == 0
    gathered = dist.all_gather_object(state)
    assert all(max_difference(s, gathered[0]) == 0 for s in gathered)


def test_distributed_optimizer_averages_zero_fills_and_groups_by_dtype():
    np.random.seed(0)
    a, b = nn.Linear(3, 2), nn.Linear(2, 2, dtype="float64")
    params = a.parameters() + b.parameters()  # float32 weight, bias; float64 weight, bias
    opt = DistributedOptimizer(ndl.optim.SGD(params, lr=1.0))
    grads = [(R + 1) * np.ones(p.shape, dtype=p.dtype) for p in params]
    for p, g in zip(params, grads):
        p.grad = ndl.Tensor(g, dtype=p.dtype, requires_grad=False)
    params[1].grad = params[1].grad if R == 0 else None
    params[3].grad = None  # no rank has this one
    before = [p.numpy().copy() for p in params]
    opt.synchronize()
    mean = (W + 1) / 2
    np.testing.assert_allclose(params[0].grad.numpy(), mean)
    np.testing.assert_allclose(params[1].grad.numpy(), 1 / W)  # rank 0's, zeros elsewhere
    np.testing.assert_allclose(params[2].grad.numpy(), mean)
    assert params[3].grad is None and params[2].grad.dtype == "float64"
    opt.step()  # no second averaging: synchronize() already ran
    np.testing.assert_allclose(params[0].numpy(), before[0] - mean, rtol=1e-6)
    np.testing.assert_array_equal(params[3].numpy(), before[3])  # skipped, as in PyTorch
    assert opt.state_dict().keys() == opt.optimizer.state_dict().keys()
    opt.lr = 0.5
    opt.optimizer.custom_attribute = 3  # the rest of its surface passes through
    assert opt.optimizer.lr == 0.5 == opt.lr and opt.custom_attribute == 3


def test_parameter_shapes_that_differ_across_ranks_are_a_clear_error():
    if W == 1:
        pytest.skip("one rank cannot disagree with itself (the 2-rank job covers it)")
    model = nn.Linear(4, 3 + R)
    with pytest.raises(ValueError, match=r"rank 1 has .* of shape \(4, 4\).* rank 0 has .* "
                                         r"of shape \(4, 3\)"):
        dist.broadcast_parameters(model)
    opt = DistributedOptimizer(ndl.optim.SGD(model.parameters(), lr=0.1))
    for p in model.parameters():
        p.grad = ndl.init.zeros(*p.shape)
    with pytest.raises(ValueError, match="every rank must build the same model"):
        opt.step()


def test_evaluation_sums_over_ranks_and_uses_rank_zero_buffers():
    """Unequal shares (37 samples, batches of 5): the job's error and loss are those of
    the whole set (sums, not means of means), with rank 0's BatchNorm statistics."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((37, DIM)).astype(np.float32)
    data = ndl.data.NDArrayDataset(x, rng.integers(0, 5, 37))
    model = mlp_resnet(nn.BatchNorm1d)
    for module in model.submodules():  # running statistics that differ by rank
        if isinstance(module, nn.BatchNorm1d):
            module.running_mean.data = ndl.Tensor(np.full(module.dim, 0.1 * R, np.float32))
    share = DistributedSampler(data, shuffle=False, pad=False)
    error, loss = ndl.train.epoch(ndl.data.DataLoader(data, 5, sampler=share), model)
    everyone = dist.all_gather_object(model.state_dict())
    assert all(max_difference(state, everyone[0]) == 0 for state in everyone)
    for module in model.submodules():
        if isinstance(module, nn.BatchNorm1d):
            assert np.all(module.running_mean.numpy() == 0)  # rank 0's
    whole_error, whole_loss = ndl.train.epoch(ndl.data.DataLoader(data, 37), model)
    assert error == pytest.approx(whole_error, abs=1e-12)
    assert loss == pytest.approx(whole_loss, rel=1e-6)


def test_convert_sync_batchnorm_unfuses_resnet9_conv_batchnorm():
    """ResNet9's ConvBN blocks train through one fused node with local statistics: the
    conversion swaps their BatchNorm2d and turns the fusion off, same outputs at W = 1."""
    np.random.seed(0)
    model = ndl.models.ResNet9()
    x = ndl.Tensor(np.random.default_rng(6).standard_normal((4, 3, 32, 32)).astype(np.float32))
    fused = [m for m in model.submodules() if isinstance(m, nn.ConvBatchNorm2d)]
    assert fused and all(m.fused for m in fused)
    before = model(x).numpy()
    nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert not any(type(m) is nn.BatchNorm2d for m in model.submodules())
    assert not any(m.fused for m in fused)
    if W == 1:
        np.testing.assert_allclose(model(x).numpy(), before, atol=1e-4)


def test_a_sync_normalize_instance_called_twice_keeps_each_calls_gradient():
    """SyncNormalize keeps its forward values on the output node: a second call of the same
    instance, before the first call's backward, leaves the first call's gradient intact."""
    from needle.nn.sync_batchnorm import SyncNormalize

    rng = np.random.default_rng(4)
    first, second = rng.standard_normal((6, 3)), rng.standard_normal((6, 3)) * 3 + 1
    weight, bias = rng.uniform(0.5, 2, 3), rng.standard_normal(3)

    def grads(x, op, again=None):
        xs = [ndl.Tensor(a, dtype="float64") for a in (x, weight, bias)]
        out = op(*xs)
        if again is not None:
            op(*[ndl.Tensor(a, dtype="float64") for a in (again, weight, bias)])
        (out * out).sum().backward()
        return [t.grad.numpy() for t in xs]

    op = SyncNormalize((0,), 1e-5)
    for got, want in zip(grads(first, op, again=second), grads(first, SyncNormalize((0,), 1e-5))):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
