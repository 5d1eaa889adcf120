"""Add an EBV head to an ordinary Avalanche script in a few lines.

The script below is what an Avalanche user already has: a class-incremental benchmark made with
``nc_benchmark`` (here Split Digits, scikit-learn's 8x8 digits in 5 experiences of 2 classes, so it runs
offline in well under a minute), an MLP, the stock ``Naive`` strategy with a replay plugin and Avalanche's
own accuracy metric. The lines marked ``# EBV`` are all it takes to swap the growing linear layer for a fixed
bank of Equiangular Basis Vectors:

1. generate (or load) a bank with one vector per class you may ever see;
2. wrap the feature extractor and the EBV head in a ``HeadedModel`` (outputs indexed by class id); with
   ``training_output="features"`` its training forward hands the loss the features and forms no logits (this
   script reads the output in training only through the criterion; DER, LwF, iCaRL and Avalanche's training
   accuracy read logits and need the default ``"logits"``);
3. add ``ClassAllocationPlugin`` (gives each new class its bank vector before training on it) and train
   with ``HeadLoss`` (the head's own loss: with ``--sampled N`` EBV's sampled softmax over N random and N
   hard negative classes, which pays off with thousands of classes).

Run: ``python examples/avalanche_ebv_plugin.py`` (``--head fc`` runs the same script with a growing FC head).
Avalanche's deprecation notes, its "no QP solver" and "No loggers specified" warnings are silenced below:
they are not about this script.
"""

from __future__ import annotations

import argparse
import time
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)  # Avalanche 0.6's own deprecations
warnings.filterwarnings("ignore", message="no QP solver found")  # Avalanche imports qpsolvers for GEM
warnings.filterwarnings("ignore", message="No loggers specified")  # this script prints the accuracy itself
import torch
from avalanche.benchmarks import nc_benchmark
from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset as tensor_dataset
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin, ReplayPlugin
from avalanche.training.storage_policy import ClassBalancedBuffer
from sklearn.datasets import load_digits
from torch import nn

from ebv_cl.bank import EBVBank  # EBV
from ebv_cl.continual.plugins import ClassAllocationPlugin, HeadLoss  # EBV
from ebv_cl.continual.strategies import HeadedModel  # EBV
from ebv_cl.heads import create_head  # EBV


def split_digits(seed: int):
    """Split Digits: 5 experiences of 2 classes, 80/20 train/test split of scikit-learn's digits."""
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    cut = int(0.8 * len(y))
    train, test = perm[:cut], perm[cut:]
    return nc_benchmark(tensor_dataset(x[train], y[train]), tensor_dataset(x[test], y[test]),
                        n_experiences=5, task_labels=False, seed=seed, class_ids_from_zero_from_first_exp=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--head", default="ebv", choices=["ebv", "fc"])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sampled", type=int, default=None, help="EBV: sampled softmax with this many random "
                        "and this many hard negatives per step (default: full softmax)")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)  # a tiny MLP: extra intra-op threads cost more than they give on a busy CPU
    benchmark = split_digits(args.seed)
    n_classes = benchmark.n_classes

    features = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU())

    bank = EBVBank.generate(n_classes, 16, seed=args.seed, time_budget=5.0)  # EBV
    sampled = {"sampled_negatives": args.sampled, "hard_negatives": args.sampled} if args.sampled else {}
    head = create_head(args.head, 64, bank=bank, **(sampled if args.head == "ebv" else {}))  # EBV: one fixed bank vector per class
    model = HeadedModel(features, head, num_outputs=n_classes,  # EBV: outputs indexed by class id
                        training_output="features")  # EBV: the loss gets the features, no logits formed in training

    strategy = Naive(
        model=model,
        optimizer=torch.optim.Adam(model.parameters(), lr=2e-3),
        criterion=HeadLoss(model),  # EBV: the head's own training loss
        train_mb_size=32,
        train_epochs=args.epochs,
        eval_mb_size=256,
        plugins=[
            ClassAllocationPlugin(),  # EBV: allocate each experience's classes before training on it
            ReplayPlugin(mem_size=100, storage_policy=ClassBalancedBuffer(max_size=100)),
        ],
        evaluator=EvaluationPlugin(accuracy_metrics(stream=True), loggers=[]),
    )

    start = time.perf_counter()  # the bank above took bank.info["seconds"]
    for i, experience in enumerate(benchmark.train_stream):
        with warnings.catch_warnings(record=True) as caught:  # Avalanche 0.6 re-enables its deprecations per call
            strategy.train(experience)
        for w in caught:
            if not issubclass(w.category, DeprecationWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        seen = benchmark.test_stream[: i + 1]
        metrics = strategy.eval(seen)
        acc = next(v for k, v in metrics.items() if k.startswith("Top1_Acc_Stream"))
        print(f"experience {i}: classes {experience.classes_in_this_experience}, "
              f"accuracy on the {2 * (i + 1)} classes seen so far {acc:.3f}, "
              f"trainable head parameters {head.trainable_head_params}")
    print(f"{args.head} head, {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
