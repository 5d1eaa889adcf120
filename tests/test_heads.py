"""Registry-driven tests: every registered head passes the same contract tests."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from ebv_cl import EBVBank
from ebv_cl.errors import (
    BankFullError, BankMismatchError, ConfigError, NotBuiltError, UnknownLabelError, UnknownOptionError,
)
from ebv_cl.heads import ClassifierHead, NCMHead, create_head, list_heads

pytestmark = pytest.mark.usefixtures("one_torch_thread")


IN = 12
CAP = 32


def _bank(n: int = CAP, dim: int = 8, seed: int = 0) -> EBVBank:
    g = torch.Generator().manual_seed(seed)
    return EBVBank(torch.nn.functional.normalize(torch.randn(n, dim, generator=g), dim=1))


def _make(name: str, bank: EBVBank | None = None, **kwargs) -> ClassifierHead:
    torch.manual_seed(0)
    return create_head(name, IN, bank=bank or _bank(), **kwargs)


def _feed(head: ClassifierHead, x: torch.Tensor, labels: list) -> None:
    if isinstance(head, NCMHead):
        head.update_means(x, labels)


def _batch(n: int = 6, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, IN, generator=torch.Generator().manual_seed(seed))


HEADS = list_heads()


def test_registry_lists_the_contract_names():
    assert set(HEADS) == {"ebv", "fc", "ncm", "tau_norm", "hadamard", "angular"}


def test_unknown_head_name_lists_valid_ones():
    with pytest.raises(ValueError, match="unknown head 'nope'; expected one of: angular, ebv"):
        create_head("nope", IN)


@pytest.mark.parametrize("name", HEADS)
def test_unknown_kwarg_is_named(name):
    with pytest.raises(UnknownOptionError, match=r"unknown option\(s\) \['colour'\] for head '.*'; valid options: "):
        create_head(name, IN, bank=_bank(), colour="red")


def test_ebv_needs_a_bank():
    with pytest.raises(ConfigError, match="needs a bank"):
        create_head("ebv", IN)


@pytest.mark.parametrize("name", HEADS)
def test_forward_backward_shapes_and_columns(name):
    head = _make(name)
    assert head.add_classes([7, "cat", np.int64(3)]) == [0, 1, 2]
    assert head.classes == [7, "cat", 3]
    x = _batch().requires_grad_(True)
    labels = [7, "cat", 3, 3, 7, "cat"]
    _feed(head, x.detach(), labels)
    logits = head(x)
    assert logits.shape == (6, 3) and logits.dtype == torch.float32
    loss = head.training_loss(x, head.columns_of(labels))
    loss.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for p in head.parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all()
    pred = head.predict_columns(x)
    assert pred.dtype == torch.int64 and pred.shape == (6,)
    assert head.predict(x) == head.labels_of(pred)  # labels, as scikit-learn's predict


@pytest.mark.parametrize("name", HEADS)
def test_columns_keep_arrival_order_and_old_logits_stay_valid(name):
    head = _make(name).eval()
    head.add_classes([5, 1])
    x = _batch()
    _feed(head, x, [5, 1, 5, 1, 5, 1])
    before = head(x).detach()
    assert head.add_classes([9, 1, torch.tensor(2)]) == [2, 1, 3]
    assert head.classes == [5, 1, 9, 2]
    assert head.columns_of([2, 5]).tolist() == [3, 0]
    if isinstance(head, NCMHead):
        assert torch.isinf(head(x)[:, 2:]).all()
    after = head(x).detach()
    assert after.shape == (6, 4)
    torch.testing.assert_close(after[:, :2], before)


@pytest.mark.parametrize("name", HEADS)
def test_errors_at_the_boundary(name):
    head = _make(name)
    with pytest.raises(NotBuiltError, match="no classes yet"):
        head(_batch())
    head.add_classes([0, 1])
    with pytest.raises(ValueError, match=rf"features must have shape \(B, {IN}\), got \(6, 5\)"):
        head(torch.randn(6, 5))
    with pytest.raises(TypeError, match="floating dtype"):
        head(torch.ones(2, IN, dtype=torch.int64))
    with pytest.raises(TypeError, match="torch.Tensor"):
        head(np.ones((2, IN), dtype=np.float32))
    with pytest.raises(UnknownLabelError, match="label 42 has no slot"):
        head.columns_of([1, 42])
    with pytest.raises(TypeError, match="must be an int or str"):
        head.add_classes([1.5])
    with pytest.raises(ValueError, match="target_columns must be an int64 tensor of shape"):
        head.training_loss(_batch(), torch.zeros(3, dtype=torch.int64))
    head.check_finite = True
    bad = _batch()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        head(bad)


@pytest.mark.parametrize("name", HEADS)
def test_state_dict_round_trip_into_a_fresh_head(name):
    head = _make(name)
    head.add_classes(["b", 4, "z"])
    x = _batch()
    _feed(head, x, ["b", 4, "z", "z", 4, "b"])
    buf = io.BytesIO()
    torch.save(head.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    torch.manual_seed(123)
    fresh = create_head(name, IN, bank=_bank())
    fresh.load_state_dict(state)
    assert fresh.classes == ["b", 4, "z"]
    torch.testing.assert_close(fresh.eval()(x), head.eval()(x))
    # Loading into a head that already has other classes replaces them.
    other = _make(name)
    other.add_classes(["q"])
    other.load_state_dict(state)
    assert other.classes == ["b", 4, "z"]


@pytest.mark.parametrize("name", HEADS)
def test_state_dict_of_another_configuration_is_rejected(name):
    head = _make(name)
    head.add_classes([1, 2])
    state = head.state_dict()
    wrong = create_head(name, IN + 1, bank=_bank(n=CAP * 2, dim=16))
    with pytest.raises(BankMismatchError, match="differently configured head"):
        wrong.load_state_dict(state)


@pytest.mark.parametrize("name", HEADS)
def test_capacity_limit(name):
    head = create_head(name, IN, bank=_bank(n=4), **({"max_classes": 4} if name != "ebv" else {}))
    head.add_classes(range(3))
    with pytest.raises(BankFullError, match="capacity 4 vectors, 3 already allocated, 2 new"):
        head.add_classes([10, 11])
    assert head.num_classes == 3


@pytest.mark.parametrize("name", HEADS)
def test_optimizer_keeps_working_across_add_classes(name):
    head = _make(name)
    head.add_classes([0, 1, 2])
    params = [p for p in head.parameters() if p.requires_grad]
    if not params:
        pytest.skip(f"{name} has no trainable parameter")
    opt = torch.optim.Adam(params, lr=1e-2)
    x = _batch()
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    head.training_loss(x, y).backward()
    opt.step()
    head.add_classes([3, 4], optimizer=opt)
    held = {id(p) for g in opt.param_groups for p in g["params"]}
    assert all(id(p) in held for p in head.parameters() if p.requires_grad)
    opt.zero_grad()
    head.training_loss(x, torch.tensor([3, 4, 2, 0, 1, 2])).backward()
    opt.step()
    for p in head.parameters():
        if p.requires_grad:
            assert opt.state[p]["exp_avg"].shape == p.shape


@pytest.mark.parametrize("name", HEADS)
def test_deepcopy_and_pickle_keep_classes_and_outputs(name):
    import copy
    import pickle

    head = _make(name).eval()
    head.add_classes([3, "x"])
    x = _batch()
    _feed(head, x, [3, "x", 3, "x", 3, "x"])
    for clone in (copy.deepcopy(head), pickle.loads(pickle.dumps(head))):
        assert clone.classes == [3, "x"]
        torch.testing.assert_close(clone(x), head(x))
        clone.add_classes([9])
        assert head.classes == [3, "x"]


@pytest.mark.parametrize("labels", [[5, 0, 17, 3], [5, "a", 17], [2**21, 4]])
def test_columns_of_tensor_fast_path_equals_the_allocator(labels):
    head = _make("fc")
    head.add_classes(labels)
    ints = [v for v in labels if isinstance(v, int)]
    query = torch.tensor(ints[::-1] + ints)
    assert torch.equal(head.columns_of(query), head.slots.slots_of(query.tolist()))
    with pytest.raises(UnknownLabelError, match="label 6 has no slot"):
        head.columns_of(torch.tensor([ints[0], 6]))
    with pytest.raises(UnknownLabelError, match="label -1 has no slot"):
        head.columns_of(torch.tensor([-1]))
    head.add_classes([6])  # the table follows new classes
    assert head.columns_of(torch.tensor([6])).tolist() == [len(labels)]


def test_deepcopy_of_an_ebv_head_shares_the_bank_but_nothing_trainable():
    import copy

    head = _make("ebv")
    head.add_classes([1, 2, 3])
    model = torch.nn.Sequential(torch.nn.Linear(IN, IN), head)
    clone = copy.deepcopy(model)
    twin = clone[1]
    assert twin.bank_vectors.data_ptr() == head.bank_vectors.data_ptr()
    assert twin._bank is head._bank
    first = next(iter(head.projection.parameters()))
    assert next(iter(twin.projection.parameters())).data_ptr() != first.data_ptr()
    assert twin.slots is not head.slots
    x = _batch()
    model.eval(), clone.eval()
    torch.testing.assert_close(clone(x), model(x))
    with torch.no_grad():
        next(iter(twin.projection.parameters())).add_(1.0)
    assert not torch.allclose(clone(x), model(x))
    twin.add_classes([4])
    assert head.classes == [1, 2, 3] and twin.classes == [1, 2, 3, 4]
