"""The ebv-cl Python API without Avalanche: a bank, an EBV head trained in a plain PyTorch loop while classes
arrive, and exact nearest-class queries through the index. Runs in a few seconds on scikit-learn's digits.

    python examples/python_api.py
"""

import torch
from sklearn.datasets import load_digits

from ebv_cl import BankIndex, EBVBank, create_head

# 1. A bank of 64 fixed unit vectors in R^16 (d = 16 is a power of 4: "auto" takes the exact Kerdock lines).
bank = EBVBank.generate(64, 16, method="auto", seed=0)
print(bank, "stats:", {k: round(v, 4) for k, v in bank.stats().to_dict().items() if isinstance(v, float)})

# 2. Data: digits as two "experiences" of classes that arrive over time (labels may be int or str).
x, y = load_digits(return_X_y=True)
x = torch.tensor(x / 16.0, dtype=torch.float32)
names = [f"digit-{int(v)}" for v in y]
experiences = [[f"digit-{d}" for d in range(5)], [f"digit-{d}" for d in range(5, 10)]]

backbone = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU())
head = create_head("ebv", 128, bank=bank, temperature=0.07)
optimizer = torch.optim.Adam([*backbone.parameters(), *head.parameters()], lr=1e-3)
generator = torch.Generator().manual_seed(0)

for classes in experiences:
    head.add_classes(classes)  # takes the next unused bank vectors; the trainable head does not grow
    # train on every class seen so far (full replay: this example shows the API, not a continual method)
    rows = torch.tensor([i for i, name in enumerate(names) if name in head.classes])
    for _ in range(30):
        for batch in rows[torch.randperm(len(rows), generator=generator)].split(64):
            targets = head.columns_of([names[i] for i in batch])
            loss = head.training_loss(backbone(x[batch]), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    print(f"after {classes[-1]}: {head.num_classes} classes, {head.trainable_head_params} trainable head params")

# 3. Exact nearest-class search over the allocated bank vectors; it follows the head's slots as classes arrive.
with torch.no_grad():
    embeddings = head.embed(backbone(x))  # unit vectors in the bank space
index = BankIndex(bank, head.slots)
scores, labels = index.search(embeddings, k=1)
accuracy = sum(label[0] == name for label, name in zip(labels, names)) / len(names)
print(f"index top-1 accuracy on the (training) digits: {accuracy:.3f}; first query -> {labels[0][0]} ({scores[0, 0]:.3f})")
