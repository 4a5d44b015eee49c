"""needle.Solver: cs231n's update rules on its test vectors, overfitting 50, MNIST.

cs231n's ``Solver`` (assignment 2) drives ``needle.models.FullyConnectedNet``, whose
gradients come from needle's autograd. Three steps, as in the assignment:

1. the update rules ``sgd_momentum``, ``rmsprop`` and ``adam`` on cs231n's fixed test vectors
   (w, dw and the state as ``np.linspace`` ramps); the expected values are cs231n's, which
   ``torch.optim`` reproduces (``tests/labs/test_solver.py`` checks both);
2. a three-layer net overfits 50 MNIST training images (train accuracy 1.0 within 20
   epochs): the sanity check that the whole loop can learn;
3. a fully connected net trained on the MNIST 8,000/2,000 split (figure ``solver_mnist.png``:
   loss per iteration, train/val accuracy per epoch).

Results: ``*_error`` (cs231n's ``rel_error`` against the expected arrays), ``overfit_train_acc``,
``overfit_epochs`` (the first epoch at 1.0), ``mnist_val_acc`` (best epoch) and
``mnist_train_acc``.
"""

from __future__ import annotations

import os

import numpy as np

from .. import solver as rules
from ..gradcheck import rel_error
from ..models import FullyConnectedNet
from ..solver import Solver
from . import common

N, D = 4, 5

# cs231n's expected values for its update-rule checks (reproduced by torch.optim).
EXPECTED = {
    "sgd_momentum_next_w": [
        [0.1406, 0.2073894737, 0.2741789474, 0.3409684211, 0.4077578947],
        [0.4745473684, 0.5413368421, 0.6081263158, 0.6749157895, 0.7417052632],
        [0.8084947368, 0.8752842105, 0.9420736842, 1.0088631579, 1.0756526316],
        [1.1424421053, 1.2092315789, 1.2760210526, 1.3428105263, 1.4096]],
    "sgd_momentum_velocity": [
        [0.5406, 0.5547578947, 0.5689157895, 0.5830736842, 0.5972315789],
        [0.6113894737, 0.6255473684, 0.6397052632, 0.6538631579, 0.6680210526],
        [0.6821789474, 0.6963368421, 0.7104947368, 0.7246526316, 0.7388105263],
        [0.7529684211, 0.7671263158, 0.7812842105, 0.7954421053, 0.8096]],
    "rmsprop_next_w": [
        [-0.3922384948, -0.340375133, -0.2884923885, -0.2365912082, -0.184672472],
        [-0.1327369983, -0.0807855504, -0.0288188405, 0.0231624656, 0.0751577444],
        [0.1271664116, 0.1791879186, 0.2312217498, 0.2832674202, 0.3353244727],
        [0.3873924763, 0.4394710241, 0.4915597314, 0.5436582343, 0.5957661882]],
    "rmsprop_cache": [
        [0.5976, 0.6126277008, 0.6277108033, 0.6428493075, 0.6580432133],
        [0.6732925208, 0.6885972299, 0.7039573407, 0.7193728532, 0.7348437673],
        [0.7503700831, 0.7659518006, 0.7815889197, 0.7972814404, 0.8130293629],
        [0.828832687, 0.8446914127, 0.8606055402, 0.8765750693, 0.8926]],
    "adam_next_w": [
        [-0.4009474717, -0.348361869, -0.2957770321, -0.2431929884, -0.1906097663],
        [-0.1380273962, -0.0854459098, -0.0328653407, 0.0197142755, 0.0722929013],
        [0.1248704968, 0.17744702, 0.2300224262, 0.2825966678, 0.3351696943],
        [0.3877414521, 0.4403118838, 0.4928809284, 0.5454485205, 0.5980145902]],
    "adam_m": [
        [0.48, 0.4994736842, 0.5189473684, 0.5384210526, 0.5578947368],
        [0.5773684211, 0.5968421053, 0.6163157895, 0.6357894737, 0.6552631579],
        [0.6747368421, 0.6942105263, 0.7136842105, 0.7331578947, 0.7526315789],
        [0.7721052632, 0.7915789474, 0.8110526316, 0.8305263158, 0.85]],
    "adam_v": [
        [0.69966, 0.6890838227, 0.6785131856, 0.6679480886, 0.6573885319],
        [0.6468345152, 0.6362860388, 0.6257431025, 0.6152057064, 0.6046738504],
        [0.5941475346, 0.583626759, 0.5731115235, 0.5626018283, 0.5520976731],
        [0.5415990582, 0.5311059834, 0.5206184488, 0.5101364543, 0.49966]],
}


def ramp(low: float, high: float) -> np.ndarray:
    return np.linspace(low, high, num=N * D).reshape(N, D)


def update_rule_errors() -> dict[str, float]:
    """Each rule on cs231n's vectors, compared with the expected next w and state."""
    w, dw = ramp(-0.4, 0.6), ramp(-0.6, 0.4)
    found = {}
    next_w, config = rules.sgd_momentum(w, dw, {"learning_rate": 1e-3,
                                                "velocity": ramp(0.6, 0.9)})
    found["sgd_momentum_next_w"], found["sgd_momentum_velocity"] = next_w, config["velocity"]
    next_w, config = rules.rmsprop(w, dw, {"learning_rate": 1e-2, "cache": ramp(0.6, 0.9)})
    found["rmsprop_next_w"], found["rmsprop_cache"] = next_w, config["cache"]
    next_w, config = rules.adam(w, dw, {"learning_rate": 1e-2, "m": ramp(0.6, 0.9),
                                        "v": ramp(0.7, 0.5), "t": 5})
    found["adam_next_w"], found["adam_m"], found["adam_v"] = next_w, config["m"], config["v"]
    return {f"{name}_error": rel_error(value, np.array(EXPECTED[name]))
            for name, value in found.items()}


def overfit(split: common.Split) -> dict[str, float]:
    """Fifty training images, 20 epochs: the training accuracy must reach 1.0."""
    X_train, y_train, X_val, y_val = split
    data = {"X_train": X_train[:50], "y_train": y_train[:50], "X_val": X_val[:500],
            "y_val": y_val[:500]}
    model = FullyConnectedNet([100, 100], input_dim=784, weight_scale=5e-2)
    solver = Solver(model, data, update_rule="adam", optim_config={"learning_rate": 5e-3},
                    num_epochs=20, batch_size=25, verbose=False)
    solver.train()
    perfect = [e for e, acc in enumerate(solver.train_acc_history) if acc == 1.0]
    return {"overfit_train_acc": max(solver.train_acc_history),
            "overfit_epochs": perfect[0] if perfect else float("nan")}


def train_mnist(split: common.Split, quick: bool, out: str) -> dict[str, float]:
    """The 8,000 training images, validation on the 2,000 others."""
    X_train, y_train, X_val, y_val = split
    data = {"X_train": X_train, "y_train": y_train, "X_val": X_val, "y_val": y_val}
    hidden, epochs = ([200], 5) if quick else ([256, 256], 15)
    model = FullyConnectedNet(hidden, input_dim=784, weight_scale=5e-2,
                              normalization=None if quick else "batchnorm")
    solver = Solver(model, data, update_rule="adam", optim_config={"learning_rate": 3e-3},
                    lr_decay=0.8, num_epochs=epochs, batch_size=100, num_train_samples=2000,
                    print_every=40, verbose=True)
    solver.train()
    plot_training(solver, os.path.join(out, "solver_mnist.png"))
    return {"mnist_val_acc": solver.best_val_acc,
            "mnist_train_acc": solver.train_acc_history[-1]}


def plot_training(solver: Solver, path: str) -> None:
    """cs231n's two panels: loss per iteration; train and val accuracy per epoch."""
    plt = common.pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6, 6))
    top.plot(solver.loss_history, ".", markersize=2)
    top.set_xlabel("iteration")
    top.set_ylabel("training loss")
    bottom.plot(solver.train_acc_history, "-o", label="train")
    bottom.plot(solver.val_acc_history, "-o", label="val")
    bottom.set_xlabel("epoch")
    bottom.set_ylabel("accuracy")
    bottom.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(quick: bool, out: str, seed: int, data_dir: str | None) -> dict[str, float]:
    results = update_rule_errors()
    split = common.load_mnist(data_dir)
    results.update(overfit(split))
    results.update(train_mnist(split, quick, out))
    return results
