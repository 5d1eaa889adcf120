"""Recall of the approximate index kinds (hnsw, ivf) on embeddings of a trained model, against exact search.

The recall figures in ``ebv_cl.index.approx`` use synthetic queries (random unit vectors, or bank vectors plus
noise). This benchmark uses what a user actually searches with: the test-set embeddings of a backbone trained
with the EBV head. It

1. generates an EBV bank of ``--n`` vectors in ``--dim`` dimensions (method ``auto``, ``--bank-seconds``);
2. trains a small CNN + EBV head (full softmax, Adam) on all classes of ``--dataset`` (default Omniglot, 1,623
   classes, 15 drawings each) for ``--epochs``; the classes take the first slots of the bank;
3. embeds the test split and searches it with the exact ``flat`` index (the reference) and with ``hnsw`` and
   ``ivf`` at several search widths, over two searchable sets: the trained classes only, and the whole bank
   (every slot allocated, as when a bank of ``--n`` classes is in use and only some were seen so far).

It prints a table of recall@1 (the approximate top-1 equals the exact top-1), recall@10 (overlap of the top-10
sets) and milliseconds per 1,000 queries, and writes the same as JSON with ``--json PATH``. Usage::

    EBV_CL_DATA=../shared/data python benchmarks/bench_recall_trained.py --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import torch

from ebv_cl import BankIndex, EBVBank, SlotAllocator
from ebv_cl.atomic import atomic_write_text
from ebv_cl.data import load_dataset
from ebv_cl.heads import create_head
from ebv_cl.models import create_backbone

_EF_SEARCH = (16, 64, 128, 512)
_NPROBE = (1, 16, 64)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="omniglot", help="a dataset of ebv_cl.data (default omniglot)")
    parser.add_argument("--data-root", default=None, help="data root (default $EBV_CL_DATA)")
    parser.add_argument("--n", type=int, default=20000, help="bank size N (>= the dataset's classes)")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--bank-seconds", type=float, default=30.0, help="time budget of the bank generator")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--temperature", type=float, default=0.07)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the report as JSON to this path")
    return parser.parse_args(argv)


def _train(args: argparse.Namespace, bank: EBVBank, train: Any) -> tuple[torch.nn.Module, Any]:
    torch.manual_seed(args.seed)
    backbone = create_backbone("small_cnn", input_shape=train.input_shape)
    head = create_head("ebv", backbone.feature_dim, bank=bank, temperature=args.temperature)
    head.add_classes(range(train.n_classes))
    params = list(backbone.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=args.lr)
    loader = torch.utils.data.DataLoader(train, batch_size=args.batch, shuffle=True,
                                         generator=torch.Generator().manual_seed(args.seed))
    for epoch in range(args.epochs):
        total, count = 0.0, 0
        for x, y in loader:
            opt.zero_grad(set_to_none=True)
            loss = head.training_loss(backbone(x), head.columns_of(y))
            loss.backward()
            opt.step()
            total, count = total + float(loss.detach()) * len(y), count + len(y)
        print(f"epoch {epoch + 1}/{args.epochs}: loss {total / count:.3f}", file=sys.stderr)
    return backbone.eval(), head.eval()


@torch.no_grad()
def _embed(backbone: torch.nn.Module, head: Any, data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    loader = torch.utils.data.DataLoader(data, batch_size=512)
    parts = [(head.embed(backbone(x)), y) for x, y in loader]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def _timed(index: BankIndex, queries: torch.Tensor, k: int) -> tuple[torch.Tensor, float]:
    start = time.perf_counter()
    _, slots = index.search_slots(queries, k)
    return slots, (time.perf_counter() - start) * 1e3 / queries.shape[0] * 1000


def _recall_rows(bank: EBVBank, searchable: int, queries: torch.Tensor, seed: int) -> list[dict[str, Any]]:
    allocator = _allocated(bank, searchable)
    exact = BankIndex(bank, allocator, device="cpu")
    exact.search_slots(queries[:8], 10)  # build
    truth, exact_ms = _timed(exact, queries, 10)
    rows = [{"kind": "flat (exact)", "setting": "", "recall@1": 1.0, "recall@10": 1.0, "ms_per_1k": exact_ms,
             "build_s": 0.0}]
    for kind, key, values in (("hnsw", "efSearch", _EF_SEARCH), ("ivf", "nprobe", _NPROBE)):
        options = {"seed": seed} if kind == "ivf" else {}
        index = BankIndex(bank, allocator, kind=kind, device="cpu", **options)
        start = time.perf_counter()
        index.search_slots(queries[:1], 1)  # builds and fills the FAISS index
        build_s = time.perf_counter() - start
        for value in values:
            if kind == "ivf" and value > index.engine.index.nlist:
                continue
            index.engine.params[key] = value  # the search-time width, set on every search
            found, ms = _timed(index, queries, 10)
            top1 = float((found[:, 0] == truth[:, 0]).float().mean())
            overlap = sum(len(set(a) & set(b)) for a, b in zip(found.tolist(), truth.tolist())) / truth.numel()
            rows.append({"kind": kind, "setting": f"{key}={value}", "recall@1": top1, "recall@10": overlap,
                         "ms_per_1k": ms, "build_s": build_s})
    for row in rows:
        row["searchable"] = searchable
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the table (and write JSON with ``--json``)."""
    args = _arguments(argv)
    if args.threads is not None:
        import faiss

        torch.set_num_threads(args.threads)
        faiss.omp_set_num_threads(args.threads)
    root = args.data_root or os.environ.get("EBV_CL_DATA")
    train = load_dataset(args.dataset, root=root, train=True)
    test = load_dataset(args.dataset, root=root, train=False)
    if args.n < train.n_classes:
        raise SystemExit(f"--n must be >= the {train.n_classes} classes of {args.dataset}, got {args.n}")
    start = time.perf_counter()
    bank = EBVBank.generate(args.n, args.dim, method="auto", seed=args.seed, time_budget=args.bank_seconds)
    print(f"bank {args.n} x {args.dim}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    backbone, head = _train(args, bank, train)
    queries, labels = _embed(backbone, head, test)
    columns = head.columns_of(labels)
    rows = []
    for searchable in (train.n_classes, args.n):
        rows.extend(_recall_rows(bank, searchable, queries, args.seed))
    exact_top1 = BankIndex(bank, _allocated(bank, train.n_classes), device="cpu").search_slots(queries, 1)[1][:, 0]
    accuracy = float((exact_top1 == columns).float().mean())
    report = {"dataset": args.dataset, "classes": train.n_classes, "test_queries": queries.shape[0], "n": args.n,
              "dim": args.dim, "epochs": args.epochs, "test_accuracy_exact": accuracy,
              "bank_coherence": bank.stats().coherence, "rows": rows}
    print(f"{args.dataset}: {train.n_classes} classes, {queries.shape[0]} test embeddings, bank {args.n} x {args.dim} "
          f"(coherence {report['bank_coherence']:.3f}), test accuracy (exact search, trained classes) {accuracy:.3f}")
    print(f"{'searchable':>10} {'kind':<13} {'setting':<13} {'recall@1':>9} {'recall@10':>10} {'ms/1k q':>9} {'build s':>8}")
    for r in rows:
        print(f"{r['searchable']:>10} {r['kind']:<13} {r['setting']:<13} {r['recall@1']:>9.4f} {r['recall@10']:>10.4f} "
              f"{r['ms_per_1k']:>9.1f} {r['build_s']:>8.1f}")
    if args.json:
        atomic_write_text(args.json, json.dumps(report, indent=2))
    return 0


def _allocated(bank: EBVBank, count: int) -> SlotAllocator:
    """An allocator over the bank with its first ``count`` slots taken."""
    allocator = SlotAllocator(bank.n)
    allocator.allocate(range(count))
    return allocator


if __name__ == "__main__":
    raise SystemExit(main())
