"""Per-head tests, each checked against an independent computation (numpy or a brute-force formula)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from ebv_cl import EBVBank
from ebv_cl.errors import BankMismatchError, ConfigError, NotBuiltError
from ebv_cl.heads import AngularHead, EBVHead, FCHead, HadamardHead, NCMHead, TauNormHead, create_head
from ebv_cl.heads.hadamard import fwht, hadamard_rows

pytestmark = pytest.mark.usefixtures("one_torch_thread")



def _bank(n: int = 40, dim: int = 8, seed: int = 0) -> EBVBank:
    g = torch.Generator().manual_seed(seed)
    return EBVBank(torch.nn.functional.normalize(torch.randn(n, dim, generator=g), dim=1))


def _x(n: int, d: int, seed: int = 3) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------------------------ ebv
def test_ebv_logits_are_cosine_over_temperature():
    bank = _bank()
    head = EBVHead(6, bank, temperature=0.2, projection="linear", feature_bn=False)  # the paper's eq. 6
    head.add_classes([10, 11, 12, 13])
    x = _x(5, 6)
    w, b = head.projection.weight.detach().double().numpy(), head.projection.bias.detach().double().numpy()
    z = x.double().numpy() @ w.T + b
    v = bank.vectors.double().numpy()[:4]
    expect = (z / np.linalg.norm(z, axis=1, keepdims=True)) @ v.T / 0.2
    np.testing.assert_allclose(head(x).detach().numpy(), expect, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(head.embed(x).norm(dim=1).detach().numpy(), 1.0, rtol=1e-6)


@pytest.mark.parametrize("name,kwargs", [("ebv", {"projection": "linear", "feature_bn": False}),
                                         ("hadamard", {"max_classes": 40})])
def test_fixed_classifier_param_count_is_constant(name, kwargs):
    head = create_head(name, 6, bank=_bank(), **kwargs)
    counts = [head.trainable_head_params]
    for start in (0, 5, 30):
        head.add_classes(range(start, start + 5))
        counts.append(head.trainable_head_params)
    assert len(set(counts)) == 1
    expected = 6 * 8 + 8 if name == "ebv" else 6 * 64 + 64 + 1
    assert counts[0] == expected


def test_fc_param_count_grows_by_one_row_per_class():
    head = FCHead(6)
    head.add_classes(range(3))
    assert head.trainable_head_params == 3 * 7
    head.add_classes(range(5))
    assert head.trainable_head_params == 5 * 7


def test_ebv_rejects_state_of_another_bank():
    head = EBVHead(6, _bank())
    head.add_classes([1, 2])
    state = head.state_dict()
    with pytest.raises(BankMismatchError, match="bank_dim: saved 8, this head 16"):
        EBVHead(6, _bank(dim=16)).load_state_dict(state)
    with pytest.raises(BankMismatchError, match="bank_sha256"):
        EBVHead(6, _bank(seed=1)).load_state_dict(state)
    with pytest.raises(BankMismatchError, match="capacity: saved 40, this head 50"):
        EBVHead(6, _bank(n=50)).load_state_dict(state)


def test_ebv_argument_errors():
    with pytest.raises(TypeError, match="bank must be an EBVBank, got Tensor"):
        EBVHead(6, torch.zeros(3, 3))
    with pytest.raises(ValueError, match="temperature must be > 0, got 0"):
        EBVHead(6, _bank(), temperature=0)
    with pytest.raises(ConfigError, match="hard_negative_mode must be one of"):
        EBVHead(6, _bank(), hard_negative_mode="random")
    with pytest.raises(ValueError, match="sampled_negatives must be None or >= 0, got -1"):
        EBVHead(6, _bank(), sampled_negatives=-1)


def test_ebv_bank_buffer_is_not_saved_but_follows_the_module():
    head = EBVHead(6, _bank())
    assert "bank_vectors" not in head.state_dict()
    assert any(name == "bank_vectors" for name, _ in head.named_buffers())


# ----------------------------------------------------------------------------------------------------- ncm
def test_ncm_means_equal_numpy_means_of_normalised_features():
    head = NCMHead(5)
    head.add_classes(["a", "b", "c"])
    x1, x2 = _x(7, 5, 1), _x(4, 5, 2)
    l1 = ["a", "b", "a", "c", "a", "b", "c"]
    l2 = ["c", "c", "a", "b"]
    head.update_means(x1, l1)
    head.update_means(x2, l2)
    xs = np.concatenate([x1.numpy(), x2.numpy()]).astype(np.float64)
    xs /= np.linalg.norm(xs, axis=1, keepdims=True)
    labels = np.array(l1 + l2)
    means = np.stack([xs[labels == c].mean(axis=0) for c in ["a", "b", "c"]])
    np.testing.assert_allclose(head.means.numpy(), means, rtol=1e-12)
    q = _x(3, 5, 9)
    qn = q.double().numpy() / np.linalg.norm(q.double().numpy(), axis=1, keepdims=True)
    cos = qn @ (means / np.linalg.norm(means, axis=1, keepdims=True)).T
    np.testing.assert_allclose(head(q).numpy(), cos, rtol=1e-5)
    assert head.trainable_head_params == 0


def test_ncm_reset_and_missing_means():
    head = NCMHead(4)
    head.add_classes([0, 1])
    with pytest.raises(NotBuiltError, match="no class mean yet"):
        head(_x(2, 4))
    head.update_means(_x(3, 4), [0, 0, 1])
    head.reset_means([1])
    logits = head(_x(2, 4))
    assert torch.isinf(logits[:, 1]).all() and torch.isfinite(logits[:, 0]).all()
    assert head.predict(_x(2, 4)) == [0, 0]
    with pytest.raises(NotBuiltError, match=r"no mean for target class\(es\) \[1\]"):
        head.training_loss(_x(2, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="one entry per feature row"):
        head.update_means(_x(3, 4), [0, 1])
    head.reset_means()
    assert head.counts.sum() == 0


# ------------------------------------------------------------------------------------------------ tau_norm
def _tau_oracle(w: np.ndarray, x: np.ndarray, y: np.ndarray, taus: list[float]) -> float:
    accs = [((x @ (w / np.linalg.norm(w, axis=1, keepdims=True) ** t).T).argmax(1) == y).mean() for t in taus]
    return taus[int(np.argmax(accs))]


def test_tau_calibrate_picks_the_best_grid_value_on_an_imbalanced_case():
    # A head class with a large weight norm swallows the tail classes; tau-normalisation undoes it.
    rng = np.random.default_rng(0)
    centers = np.eye(4, 6) * 3.0
    norms = np.array([8.0, 1.0, 1.0, 0.5])
    w = centers / 3.0 * norms[:, None] + rng.normal(0, 0.05, (4, 6))
    y = np.repeat(np.arange(4), 50)
    x = centers[y] + rng.normal(0, 1.0, (200, 6))
    head = TauNormHead(6)
    head.add_classes(range(4))
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(w).float())
    taus = [i / 10 for i in range(11)]
    chosen = head.calibrate(torch.from_numpy(x).float(), torch.from_numpy(y), taus=taus)
    assert chosen == pytest.approx(_tau_oracle(w, x, y, taus), abs=1e-9)
    assert chosen > 0.5 and float(head.tau) == pytest.approx(chosen)
    xt = torch.from_numpy(x[:5]).float()
    head.train()
    torch.testing.assert_close(head(xt), xt @ head.weight.T)
    head.eval()
    scaled = head.weight / head.weight.norm(dim=1, keepdim=True) ** chosen
    torch.testing.assert_close(head(xt), xt @ scaled.T)
    torch.testing.assert_close(head.prediction_logits(xt), xt @ scaled.T)


def test_tau_errors():
    with pytest.raises(ValueError, match=r"tau must be in \[0, 1\], got 1.5"):
        TauNormHead(4, tau=1.5)
    head = TauNormHead(4)
    head.add_classes([0, 1])
    with pytest.raises(ValueError, match=r"taus\[\] must be in \[0, 1\], got -0.1"):
        head.calibrate(_x(2, 4), [0, 1], taus=[-0.1])
    with pytest.raises(ValueError, match="at least one value"):
        head.calibrate(_x(2, 4), [0, 1], taus=[])


# ------------------------------------------------------------------------------------------------ hadamard
@pytest.mark.parametrize("p", [1, 2, 8, 64])
def test_fwht_and_rows_equal_scipy_hadamard(p):
    h = scipy.linalg.hadamard(p)
    x = _x(3, p)
    np.testing.assert_allclose(fwht(x).numpy(), x.numpy() @ h.T, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(hadamard_rows(p, p).numpy(), h)


def test_hadamard_logits_dense_and_fast_paths_agree_with_the_formula():
    head = HadamardHead(6, max_classes=1500, init_scale=3.0)  # p = 2048: the fast transform path
    assert head.dim == 2048 and head._dense_rows.numel() == 0
    head.add_classes(range(5))
    x = _x(4, 6)
    z = torch.nn.functional.normalize(head.projection(x), dim=1).detach().double().numpy()
    rows = scipy.linalg.hadamard(2048)[:5] / math.sqrt(2048)
    np.testing.assert_allclose(head(x).detach().numpy(), 3.0 * z @ rows.T, rtol=1e-4, atol=1e-5)
    small = HadamardHead(6, max_classes=5)
    assert small.dim == 8 and small._dense_rows.numel() == 64
    small.add_classes(range(5))
    z = torch.nn.functional.normalize(small.projection(x), dim=1).detach().double().numpy()
    rows = scipy.linalg.hadamard(8)[:5] / math.sqrt(8)
    np.testing.assert_allclose(small(x).detach().numpy(), 10.0 * z @ rows.T, rtol=1e-5)


def test_hadamard_dim_errors_and_bank_capacity():
    with pytest.raises(ValueError, match=r"dim must be a power of two >= max_classes \(10\), got 12"):
        HadamardHead(4, max_classes=10, dim=12)
    with pytest.raises(ValueError, match="got 8"):
        HadamardHead(4, max_classes=10, dim=8)
    assert create_head("hadamard", 4, bank=_bank(n=40)).capacity == 40


# ------------------------------------------------------------------------------------------------- angular
def test_angular_logits_follow_eq_1_and_gradients_stay_finite_at_cos_one():
    head = AngularHead(5, scale=2.0)
    head.add_classes([0, 1, 2])
    x = _x(4, 5)
    w = head.weight.detach().double().numpy()
    xn = x.double().numpy() / np.linalg.norm(x.double().numpy(), axis=1, keepdims=True)
    cos = xn @ (w / np.linalg.norm(w, axis=1, keepdims=True)).T
    np.testing.assert_allclose(head(x).detach().numpy(), 2.0 * (np.pi - np.arccos(cos)), rtol=1e-5)
    parallel = (head.weight.detach()[:1] * 3).requires_grad_(True)
    head(parallel).sum().backward()
    assert torch.isfinite(parallel.grad).all() and torch.isfinite(head.weight.grad).all()


# ------------------------------------------------------------------------------------------ optimizer swap
def test_growing_keeps_optimizer_state_of_old_rows():
    head = FCHead(4)
    head.add_classes([0, 1])
    opt = torch.optim.SGD(head.parameters(), lr=0.1, momentum=0.9)
    head.training_loss(_x(3, 4), torch.tensor([0, 1, 0])).backward()
    opt.step()
    old = opt.state[head.weight]["momentum_buffer"].clone()
    head.add_classes([2], optimizer=opt)
    grown = opt.state[head.weight]["momentum_buffer"]
    assert grown.shape == (3, 4)
    torch.testing.assert_close(grown[:2], old)
    assert (grown[2] == 0).all()
    with pytest.raises(ValueError, match="optimizer does not hold this head's parameters"):
        head.add_classes([3], optimizer=torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1))
    assert head.classes == [0, 1, 2]


def test_ebv_without_projection_has_no_trainable_parameter():
    bank = _bank()
    head = EBVHead(8, bank, projection=False, feature_bn=False, temperature=0.5)
    head.add_classes([0, 1, 2])
    x = _x(4, 8)
    expect = torch.nn.functional.normalize(x, dim=1) @ bank.vectors[:3].T / 0.5
    torch.testing.assert_close(head(x), expect)
    assert head.trainable_head_params == 0
    with pytest.raises(ValueError, match=r"projection=False needs in_features == bank.dim \(8\), got 6"):
        EBVHead(6, bank, projection=False)
