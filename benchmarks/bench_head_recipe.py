"""Which training recipe lets the EBV (and Hadamard) head fit as fast as FC with many classes (issue 13, part 1).

Trains ``small_cnn`` + one head from scratch (Adam, batch 128, no augmentation) on every class of a dataset and
records, per epoch, the running accuracy on the training batches (train mode, as a user sees it) and the
accuracy on held-out images of the same classes; at the end, the 20-way one-shot accuracy of the backbone's
features (and, for heads with one, of the head's normalised embeddings) on characters the model never saw,
by cosine nearest neighbour, over a fixed set of episodes (for an MLP projection also of its hidden layer);
after every epoch the validation one-shot accuracy over ``--curve-episodes`` episodes (outside the timings).
CPU seconds (``time.process_time``) and wall seconds of the training are recorded.

Datasets and splits (selection uses the validation parts only; the test parts are for the final table):

* ``omniglot``: the 964 background characters; drawings 1-17 of each train, 18-20 are the held-out
  (validation) images. One-shot episodes come from the 659 evaluation characters: the first 10 evaluation
  alphabets (sorted by name) are the validation split, the other 10 the test split.
  ``--classes n`` trains on a seeded random subset of n background characters instead (runs named
  ``omniglot<n>``; the one-shot pools stay the same), to see how the heads compare between few and many classes.
* ``emnist``: EMNIST ByClass (the test split, the only one on disk), 62 imbalanced classes; a seeded 80/20
  split into train and held-out images (``--emnist-train`` caps the train images). No one-shot part.

Recipes are named in ``RECIPES`` (head kind + head options, i.e. what YAML ``head_options`` passes). Usage::

    EBV_CL_DATA=../shared/data OMP_NUM_THREADS=1 python benchmarks/bench_head_recipe.py \\
        --dataset omniglot --recipes fc,ebv_t07,ebv_bn --epochs 10 --seeds 0,1,2 --out benchmarks/results/recipe
    python benchmarks/bench_head_recipe.py --report benchmarks/results/recipe   # table + summary JSON

Each (dataset, recipe, seed, epochs) run writes one JSON file into ``--out`` (runs already there are skipped),
so separate processes can share the work.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ebv_cl.atomic import atomic_write_text
from ebv_cl.bank import EBVBank
from ebv_cl.data import load_dataset
from ebv_cl.heads import create_head
from ebv_cl.models import create_backbone

RECIPES: dict[str, tuple[str, dict[str, Any]]] = {
    "fc": ("fc", {}),
    "ebv_t07": ("ebv", {"projection": "linear", "temperature": 0.07, "feature_bn": False, "learn_scale": False}),
    "ebv_t03": ("ebv", {"projection": "linear", "temperature": 0.03, "feature_bn": False, "learn_scale": False}),
    "ebv_t05": ("ebv", {"projection": "linear", "temperature": 0.05, "feature_bn": False, "learn_scale": False}),
    "ebv_t02": ("ebv", {"temperature": 0.02, "projection": "linear", "feature_bn": False, "learn_scale": False}),
    "ebv_scale": ("ebv", {"projection": "linear", "temperature": 0.07, "learn_scale": True, "feature_bn": False}),
    "ebv_bn": ("ebv", {"projection": "linear", "temperature": 0.07, "feature_bn": True, "learn_scale": False}),
    "ebv_bn_scale": ("ebv", {"projection": "linear", "temperature": 0.07, "feature_bn": True, "learn_scale": True}),
    "ebv_bn_t05": ("ebv", {"projection": "linear", "temperature": 0.05, "feature_bn": True, "learn_scale": False}),
    "ebv_bn_m02": ("ebv", {"projection": "linear", "temperature": 0.07, "feature_bn": True, "learn_scale": False,
                            "margin": 0.2}),
    "ebv_bn_ls": ("ebv", {"projection": "linear", "temperature": 0.07, "feature_bn": True, "learn_scale": False,
                           "label_smoothing": 0.1}),
    "ebv_mlp": ("ebv", {"temperature": 0.07, "projection": "mlp", "feature_bn": False, "learn_scale": False}),
    "ebv_mlp_bn": ("ebv", {"temperature": 0.07, "projection": "mlp", "feature_bn": True, "learn_scale": False}),
    "ebv_mlp1024_bn": ("ebv", {"temperature": 0.07, "projection": "mlp", "hidden": 1024, "feature_bn": True,
                               "learn_scale": False}),
    "ebv_orth": ("ebv", {"projection": "linear", "temperature": 0.07, "projection_init": "orthogonal",
                         "feature_bn": False, "learn_scale": False}),
    "ebv_none": ("ebv", {"temperature": 0.07, "projection": False, "feature_bn": False, "learn_scale": False}),
    "ebv_none_bn": ("ebv", {"temperature": 0.07, "projection": False, "feature_bn": True, "learn_scale": False}),
    "ebv_default": ("ebv", {}),
    "ebv_mlp256_bn": ("ebv", {"temperature": 0.07, "projection": "mlp", "hidden": 256, "feature_bn": True,
                              "learn_scale": False}),
    "ebv_mlp1024_bn_do": ("ebv", {"temperature": 0.07, "projection": "mlp", "hidden": 1024, "dropout": 0.5,
                                  "feature_bn": True, "learn_scale": False}),
    "ebv_mlp1024_bn_m02": ("ebv", {"temperature": 0.07, "projection": "mlp", "hidden": 1024, "feature_bn": True,
                                   "learn_scale": False, "margin": 0.2}),
    "ebv_mlp1024_bn_t15": ("ebv", {"temperature": 0.15, "projection": "mlp", "hidden": 1024, "feature_bn": True,
                                   "learn_scale": False}),
    "ebv_mlp1024_bn_do3": ("ebv", {"temperature": 0.07, "projection": "mlp", "hidden": 1024, "dropout": 0.3,
                                   "feature_bn": True, "learn_scale": False}),
    "ebv_mlp1024_bn_t05": ("ebv", {"temperature": 0.05, "projection": "mlp", "hidden": 1024, "feature_bn": True,
                                   "learn_scale": False}),
    "ebv_mlp1024_bn_t03": ("ebv", {"temperature": 0.03, "projection": "mlp", "hidden": 1024, "feature_bn": True,
                                   "learn_scale": False}),
    "ebv_mlp1024_bn_scale": ("ebv", {"temperature": 0.07, "projection": "mlp", "hidden": 1024, "feature_bn": True,
                                     "learn_scale": True}),
    "hadamard_s10": ("hadamard", {"init_scale": 10.0, "feature_bn": False}),
    "hadamard_bn": ("hadamard", {"init_scale": 10.0, "feature_bn": True}),
    "hadamard_default": ("hadamard", {}),
    "hadamard_mlp1024_bn": ("hadamard", {"projection": "mlp", "hidden": 1024, "feature_bn": True}),
}

# Optimiser-side variants of a recipe: ``<recipe>@lr<x>`` scales the head's learning rate by x,
# ``<recipe>@wd<x>`` puts an L2 weight decay of x on the head's parameters only (e.g. ``ebv_default@lr0.1``).
# ``<recipe>@d<n>`` trains against a bank of dimension n instead of ``--bank-dim``.
_OPTIMISER_KNOBS = {"lr": "head_lr_scale", "wd": "head_weight_decay", "d": "bank_dim"}

_OMNIGLOT_CLASSES = 1623
_ALPHABET_SPLIT = 10  # the first 10 evaluation alphabets: one-shot validation; the rest: one-shot test


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="omniglot", choices=("omniglot", "emnist"))
    parser.add_argument("--data-root", default=None, help="data root (default $EBV_CL_DATA)")
    parser.add_argument("--recipes", default="fc,ebv_t07", help=f"comma-separated names of {sorted(RECIPES)}")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--bank-dim", type=int, default=128)
    parser.add_argument("--bank-seconds", type=float, default=20.0)
    parser.add_argument("--episodes", type=int, default=400, help="20-way one-shot episodes per split")
    parser.add_argument("--emnist-train", type=int, default=20000, help="train images taken from EMNIST")
    parser.add_argument("--classes", type=int, default=None,
                        help="omniglot: train on a seeded random subset of this many background characters "
                             "(default all 964); runs are then named omniglot<n>")
    parser.add_argument("--curve-episodes", type=int, default=200,
                        help="validation one-shot episodes after every epoch (0: none; not counted in the times)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results/head_recipe")
    parser.add_argument("--report", default=None, help="print the table of the runs in this folder and exit")
    return parser.parse_args(argv)


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)
    return x[:, None] if x.ndim == 3 else x.permute(0, 3, 1, 2).contiguous()


def _data(args: argparse.Namespace) -> dict[str, Any]:
    """Train / held-out tensors and, for Omniglot, the one-shot pools ``{split: (images, labels)}``."""
    if args.dataset == "omniglot":
        a = load_dataset("omniglot", root=args.data_root, train=True, train_drawers=17)
        b = load_dataset("omniglot", root=args.data_root, train=False, train_drawers=17)
        ya, yb = np.asarray(a.targets), np.asarray(b.targets)
        xa, xb = _to_tensor(a.images), _to_tensor(b.images)
        bg_a, bg_b = ya < 964, yb < 964
        alphabets = sorted({c.split("/")[0] for c in a.classes[964:]})
        val_alpha = set(alphabets[:_ALPHABET_SPLIT])
        is_val = np.array([c.split("/")[0] in val_alpha for c in a.classes])
        pools = {}
        for split, keep in (("val", is_val), ("test", ~is_val)):
            ma, mb = ~bg_a & keep[ya], ~bg_b & keep[yb]
            pools[split] = (torch.cat([xa[ma], xb[mb]]), torch.from_numpy(np.concatenate([ya[ma], yb[mb]])))
        kept, relabel = _class_subset(964, args.classes)
        bg_a, bg_b = kept[ya], kept[yb]
        return {"train": (xa[bg_a], torch.from_numpy(relabel[ya[bg_a]])),
                "heldout": (xb[bg_b], torch.from_numpy(relabel[yb[bg_b]])),
                "classes": int(kept.sum()), "pools": pools}
    d = load_dataset("emnist_byclass", root=args.data_root)
    y = np.asarray(d.targets)
    order = np.random.default_rng(1234).permutation(len(y))
    cut = int(0.8 * len(y))
    tr, ho = order[:cut][: args.emnist_train], order[cut:]
    x = _to_tensor(np.asarray(d.images))
    return {"train": (x[tr], torch.from_numpy(y[tr])), "heldout": (x[ho], torch.from_numpy(y[ho])),
            "classes": int(y.max()) + 1, "pools": {}}


def _class_subset(n_background: int, classes: int | None) -> tuple[np.ndarray, np.ndarray]:
    """``(kept, relabel)`` over all 1,623 Omniglot labels: which background characters train (all, or a seeded
    random subset of ``classes``) and their new labels ``0..classes-1`` (-1 elsewhere)."""
    if classes is not None and not 1 <= classes <= n_background:
        raise SystemExit(f"--classes must be in [1, {n_background}], got {classes}")
    chosen = (np.arange(n_background) if classes is None
              else np.sort(np.random.default_rng(4321).permutation(n_background)[:classes]))
    kept = np.zeros(_OMNIGLOT_CLASSES, dtype=bool)
    kept[chosen] = True
    relabel = np.full(_OMNIGLOT_CLASSES, -1, dtype=np.int64)
    relabel[chosen] = np.arange(len(chosen))
    return kept, relabel


def _dataset_tag(args: argparse.Namespace) -> str:
    """The run's dataset name: ``omniglot``, ``omniglot<n>`` for a class subset, or ``emnist``."""
    if args.dataset == "omniglot" and args.classes is not None:
        return f"omniglot{args.classes}"
    return args.dataset


def _bank(n: int, dim: int, seconds: float) -> EBVBank:
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"ebv-recipe-bank-{n}x{dim}-s0.pt"
    if path.exists():
        return EBVBank.load(path)
    bank = EBVBank.generate(n, dim, seed=0, time_budget=seconds)
    bank.save(path)
    return bank


@torch.no_grad()
def _features(model: torch.nn.Module, x: torch.Tensor, batch: int = 1024) -> torch.Tensor:
    return torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])


@torch.no_grad()
def _one_shot(feats: torch.Tensor, labels: torch.Tensor, episodes: int, seed: int, ways: int = 20) -> float:
    """Mean accuracy of 20-way one-shot episodes (1 support, 1 query per class), cosine nearest neighbour."""
    f = torch.nn.functional.normalize(feats.float(), dim=1)
    classes = labels.unique()
    by_class = {int(c): (labels == c).nonzero().flatten() for c in classes}
    g = torch.Generator().manual_seed(seed)
    correct = 0
    for _ in range(episodes):
        chosen = classes[torch.randperm(len(classes), generator=g)[:ways]]
        support, query = [], []
        for c in chosen.tolist():
            idx = by_class[c]
            pick = idx[torch.randperm(len(idx), generator=g)[:2]]
            support.append(int(pick[0]))
            query.append(int(pick[1]))
        sims = f[query] @ f[support].T
        correct += int((sims.argmax(1) == torch.arange(ways)).sum())
    return correct / (episodes * ways)


def _split_recipe(recipe: str) -> tuple[str, dict[str, float]]:
    """``"ebv_default@lr0.1@wd1e-4"`` -> ``("ebv_default", {"head_lr_scale": 0.1, "head_weight_decay": 1e-4})``."""
    base, *knobs = recipe.split("@")
    settings: dict[str, float] = {}
    for knob in knobs:
        key = next((k for k in _OPTIMISER_KNOBS if knob.startswith(k)), None)
        if key is None:
            raise SystemExit(f"--recipes: unknown knob {knob!r} in {recipe!r}; expected lr<x>, wd<x> or d<n>")
        settings[_OPTIMISER_KNOBS[key]] = float(knob[len(key):])
    return base, settings


def _optimiser(backbone: torch.nn.Module, head: torch.nn.Module, lr: float,
               knobs: dict[str, float]) -> torch.optim.Optimizer:
    """Adam over backbone and head; the head's group takes the recipe's learning-rate scale and weight decay."""
    return torch.optim.Adam([
        {"params": list(backbone.parameters())},
        {"params": list(head.parameters()), "lr": lr * knobs.get("head_lr_scale", 1.0),
         "weight_decay": knobs.get("head_weight_decay", 0.0)},
    ], lr=lr)


def _run(args: argparse.Namespace, data: dict[str, Any], bank: EBVBank, recipe: str, seed: int) -> dict[str, Any]:
    base, knobs = _split_recipe(recipe)
    kind, options = RECIPES[base]
    if "bank_dim" in knobs:
        bank = _bank(data["classes"], int(knobs["bank_dim"]), args.bank_seconds)
    torch.manual_seed(seed)
    xtr, ytr = data["train"]
    xho, yho = data["heldout"]
    backbone = create_backbone("small_cnn", input_shape=tuple(xtr.shape[1:]))
    head = create_head(kind, backbone.feature_dim, bank=bank, **options)
    head.add_classes(range(data["classes"]))
    opt = _optimiser(backbone, head, args.lr, knobs)
    g = torch.Generator().manual_seed(seed)
    train_acc, heldout_acc, losses = [], [], []
    curve: dict[str, list[float]] = {}
    cpu0, wall0 = time.process_time(), time.perf_counter()
    cpu_eval = wall_eval = 0.0
    for epoch in range(args.epochs):
        backbone.train(), head.train()
        order = torch.randperm(len(xtr), generator=g)
        hits = total = 0
        loss_sum = 0.0
        for i in range(0, len(order), args.batch):
            idx = order[i:i + args.batch]
            y = head.columns_of(ytr[idx])
            feats = backbone(xtr[idx])
            loss = head.training_loss(feats, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                hits += int((head.prediction_logits(feats).argmax(1) == y).sum())
            total += len(idx)
            loss_sum += float(loss.detach()) * len(idx)
        backbone.eval(), head.eval()
        pred = _features(lambda x: head.predict_columns(backbone(x)), xho)
        heldout_acc.append(float((pred == head.columns_of(yho)).float().mean()))
        train_acc.append(hits / total)
        losses.append(loss_sum / total)
        shots = ""
        if args.curve_episodes and "val" in data["pools"]:  # validation one-shot curve, outside the timings
            c0, w0 = time.process_time(), time.perf_counter()
            for name, value in _one_shots(backbone, head, data["pools"]["val"], args.curve_episodes, seed).items():
                curve.setdefault(f"oneshot_val_{name}", []).append(value)
                shots += f" 1shot-val-{name} {value:.4f}"
            cpu_eval += time.process_time() - c0
            wall_eval += time.perf_counter() - w0
        print(f"{_dataset_tag(args)} {recipe} seed {seed} epoch {epoch + 1}: loss {losses[-1]:.3f} "
              f"train {train_acc[-1]:.4f} heldout {heldout_acc[-1]:.4f}{shots}", file=sys.stderr, flush=True)
    cpu, wall = time.process_time() - cpu0 - cpu_eval, time.perf_counter() - wall0 - wall_eval
    result: dict[str, Any] = {"dataset": _dataset_tag(args), "classes": data["classes"], "recipe": recipe,
                              "head": kind, "options": options,
                              "optimiser": knobs,
                              "seed": seed, "epochs": args.epochs, "batch": args.batch, "lr": args.lr, "bank_dim": bank.dim,
                              "train_acc": train_acc, "heldout_acc": heldout_acc, "loss": losses,
                              "train_cpu_s": round(cpu, 1), "train_wall_s": round(wall, 1)}
    if curve:
        result["curve_episodes"] = args.curve_episodes
        result.update({f"{key}_curve": value for key, value in curve.items()})
    for split, pool in data["pools"].items():
        for name, value in _one_shots(backbone, head, pool, args.episodes, seed).items():
            result[f"oneshot_{split}_{name}"] = value
    return result


def _one_shots(backbone: torch.nn.Module, head: Any, pool: tuple[torch.Tensor, torch.Tensor], episodes: int,
               seed: int) -> dict[str, float]:
    """One-shot accuracy of the backbone's features and, for heads with ``embed``, of the head's embeddings
    (and, for an MLP projection, of its hidden layer after the ReLU)."""
    backbone.eval(), head.eval()
    x, y = pool
    feats = _features(backbone, x)
    out = {"features": _one_shot(feats, y, episodes, seed=1000 + seed)}
    if hasattr(head, "embed"):
        out["embed"] = _one_shot(_features(head.embed, feats), y, episodes, seed=1000 + seed)
    if getattr(head, "projection_kind", None) == "mlp":
        out["hidden"] = _one_shot(_features(head.projection[:3], feats), y, episodes, seed=1000 + seed)
    return out


def _report(folder: Path) -> None:
    runs = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json")) if p.name != "summary.json"]
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["dataset"], r["epochs"], r["recipe"]), []).append(r)
    rows = []
    print(f"{'dataset':9} {'ep':>3} {'recipe':16} {'seeds':>6} {'train':>13} {'heldout':>13} "
          f"{'1shot val':>13} {'1shot test':>13} {'emb val':>7} {'cpu s':>7}")
    for (ds, ep, name), rs in sorted(groups.items()):
        def stat(key: str, last: bool = False) -> tuple[float, float] | None:
            vals = [(r[key][-1] if last else r[key]) for r in rs if key in r]
            return (float(np.mean(vals)), float(np.std(vals))) if vals else None
        row = {"dataset": ds, "epochs": ep, "recipe": name, "seeds": sorted(r["seed"] for r in rs),
               "options": rs[0]["options"], "head": rs[0]["head"],
               "train_acc_last": stat("train_acc", True), "heldout_acc_last": stat("heldout_acc", True),
               "oneshot_val_features": stat("oneshot_val_features"),
               "oneshot_test_features": stat("oneshot_test_features"),
               "oneshot_val_embed": stat("oneshot_val_embed"), "train_cpu_s": stat("train_cpu_s")}
        rows.append(row)

        def fmt(v: tuple[float, float] | None, pct: bool = True) -> str:
            if v is None:
                return "-"
            return f"{100 * v[0]:.2f}+-{100 * v[1]:.2f}" if pct else f"{v[0]:.0f}"
        emb = row["oneshot_val_embed"]
        print(f"{ds:9} {ep:>3} {name:16} {len(rs):>6} {fmt(row['train_acc_last']):>13} "
              f"{fmt(row['heldout_acc_last']):>13} {fmt(row['oneshot_val_features']):>13} "
              f"{fmt(row['oneshot_test_features']):>13} {('-' if emb is None else f'{100 * emb[0]:.1f}'):>7} "
              f"{fmt(row['train_cpu_s'], False):>7}")
    atomic_write_text(folder / "summary.json", json.dumps(rows, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    if args.report:
        _report(Path(args.report))
        return 0
    torch.set_num_threads(args.threads)
    unknown = [r for r in args.recipes.split(",") if _split_recipe(r)[0] not in RECIPES]
    if unknown:
        raise SystemExit(f"--recipes: unknown {unknown}; expected names of {sorted(RECIPES)}")
    if args.classes is not None and args.dataset != "omniglot":
        raise SystemExit(f"--classes picks Omniglot characters; it needs --dataset omniglot, got {args.dataset!r}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = _data(args)
    bank = _bank(data["classes"], args.bank_dim, args.bank_seconds)
    for seed in [int(s) for s in args.seeds.split(",")]:
        for recipe in args.recipes.split(","):
            path = out / f"{_dataset_tag(args)}-e{args.epochs}-{recipe}-s{seed}.json"
            if path.exists():
                continue
            result = _run(args, data, bank, recipe, seed)
            result["cpu"] = _cpu_name()
            atomic_write_text(path, json.dumps(result, indent=1) + "\n")
    return 0


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    sys.exit(main())
