"""Runs the seven "from the foundations" labs at their --quick size into docs/foundations/
and writes docs/foundations.md from their results.json files: no number in that page is
typed by hand.

    NEEDLE_DATA=../shared/data PYTHONPATH=. python docs/make_foundations.py [--full]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from needle import labs  # noqa: E402

LABS = ("matmul", "backprop", "init", "telemetry", "schedules", "norms", "cifar_ideas")
OUT = os.path.join(ROOT, "docs", "foundations")

PAGE = """# From the foundations: matmul to a trained CNN

fast.ai's "deep learning from the foundations" (seed 004) rebuilt on needle, one lab per
step. Every number and figure below comes from `python docs/make_foundations.py`, which
runs each lab with `python -m needle lab NAME {size}` into `docs/foundations/NAME/` and
fills this page from their `results.json` (run on {machine}, {date}; {seconds:.0f} s in
all, on a machine shared with other jobs, so the timings are noisy).

## 1. Matrix multiplication, 50,000 times faster (`lab matmul`)

A 5x784 by 784x10 product on needle Tensors, five ways, beside the notebook's times on
PyTorch tensors:

| way | needle | notebook |
|---|---|---|
| three Python loops | {matmul[ms_loops]:.4g} ms | 835 ms |
| elementwise row * column | {matmul[ms_elementwise]:.4g} ms | 1.39 ms |
| broadcasting a row | {matmul[ms_broadcast]:.4g} ms | 254 us |
| `ndl.einsum("ik,kj->ij")` | {matmul[ms_einsum]:.4g} ms | 57 us |
| `a @ b` (BLAS) | {matmul[ms_matmul]:.4g} ms | 18 us |

Loops to `@`: **{matmul[speedup_loops_to_matmul]:,.0f}x** (notebook ~46,000x); the five
results agree to {matmul[max_abs_diff]:.2g}. `ndl.einsum` is an op like any other: its
gradient is another einsum (traces and diagonals come back through an identity operand),
so it differentiates twice.

![ladder](foundations/matmul/matmul_ladder.png)

## 2. Forward and backward by hand (`lab backprop`)

A Linear(784, 50)-ReLU-Linear(50, 1) regression on {backprop[num_images]:.0f} MNIST
images with the chain rule written out (`mse_grad`, `relu_grad`, `lin_grad`): the largest
difference from needle's `backward()` is {backprop[max_grad_diff]:.2g} and between needle
and PyTorch {backprop[max_grad_diff_torch]:.2g} (float64).

## 3. Initialisation (`lab init`)

Multiplying a vector by 512x512 `randn` matrices overflows after
**{init[steps_to_nan]:.0f}** products; scaled by 0.01 the std after 100 is
{init[std_after_100_small]:.3g}; scaled by 1/sqrt(512) it is
{init[std_after_100_scaled]:.3g}. Through ten Linear-ReLU layers the activation std at
layer 10 is {init[kaiming_std_layer10]:.3g} with Kaiming, {init[xavier_std_layer10]:.3g}
with Xavier and {init[torch_default_std_layer10]:.3g} with PyTorch's default
U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

![init](foundations/init/init_layer_stats.png)

## 4. Looking inside: hooks, GeneralRelu, LSUV (`lab telemetry`)

Forward hooks (`nn.Hooks`) record every activation's mean, std and histogram while an
MNIST CNN trains one epoch. `nn.init.lsuv` brought each layer to std
{telemetry[lsuv_final_std_layer1]:.4f}, {telemetry[lsuv_final_std_layer2]:.4f},
{telemetry[lsuv_final_std_layer3]:.4f}, {telemetry[lsuv_final_std_layer4]:.4f} (max
deviation {telemetry[lsuv_max_std_dev]:.2g}). Test accuracy after the epoch: ReLU
{telemetry[relu_val_acc]:.4f}, GeneralRelu {telemetry[general_relu_val_acc]:.4f},
GeneralRelu + LSUV {telemetry[lsuv_val_acc]:.4f}.

![stats](foundations/telemetry/telemetry_stats.png)
![histograms](foundations/telemetry/telemetry_hist.png)

## 5. One training loop, schedules and the LR finder (`lab schedules`)

Everything trains through `needle.learner.Learner` and its callbacks. `learner.lr_find()`
suggests {schedules[lr_find_suggestion]:.3g}; at {schedules[lr:.3g]} held constant the MLP
reaches {schedules[constant_val_acc]:.4f} test accuracy, with `OneCycleLR` peaking there
{schedules[onecycle_val_acc]:.4f}.

![lr_find](foundations/schedules/lr_find.png)
![schedules](foundations/schedules/schedules.png)

## 6. BatchNorm and its variants (`lab norms`)

{norms_table}

BatchNorm at batch size 2 ({norms[bn_bs2_val_acc]:.4f}) falls behind GroupNorm
({norms[gn_bs2_val_acc]:.4f}): its training statistics come from two images, its
evaluation statistics from running averages.

![norms](foundations/norms/norms.png)

## 7. cs231n's CIFAR-10 ideas (`lab cifar_ideas`)

{cifar_table}

![ideas](foundations/cifar_ideas/cifar_ideas.png)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="full-size runs, not --quick")
    parser.add_argument("--page-only", action="store_true",
                        help="rewrite the page from the results.json files already there")
    args = parser.parse_args()
    start = time.perf_counter()
    results = {}
    for name in LABS:
        out = os.path.join(OUT, name)
        if args.page_only:
            with open(os.path.join(out, "results.json")) as f:
                results[name] = json.load(f)
        else:
            results[name] = labs.run_lab(name, quick=not args.full, out=out)
    if args.page_only:
        with open(os.path.join(OUT, "all_results.json")) as f:
            start -= json.load(f).get("seconds", 0.0)
    tables = {key: open(os.path.join(OUT, lab, f"{lab}.md")).read().strip()
              for key, lab in (("norms_table", "norms"), ("cifar_table", "cifar_ideas"))}
    page = PAGE.replace("{schedules[lr:.3g]}", f"{results['schedules']['lr']:.3g}").format(
        size="" if args.full else "--quick", machine=platform.machine(),
        date=time.strftime("%Y-%m-%d"), seconds=time.perf_counter() - start,
        **results, **tables)
    with open(os.path.join(ROOT, "docs", "foundations.md"), "w") as f:
        f.write(page)
    with open(os.path.join(OUT, "all_results.json"), "w") as f:
        json.dump({**results, "seconds": time.perf_counter() - start}, f, indent=1)
    print("wrote docs/foundations.md")


if __name__ == "__main__":
    main()
