"""The meta-learned new-user embedding (:mod:`gnnrec.meta`) on a planted problem: items in two clusters
(plus a popularity-like direction unrelated to them and noise in every other dimension), users who like one
cluster; the adapted embedding of a new user from its 1..3 items must rank the rest of its cluster above
the other cluster."""

from __future__ import annotations

import pytest
import torch

from gnnrec.graph import csr_from_pairs
from gnnrec.meta import MetaAdapter, default_pool, meta_train, negatives_mask
from gnnrec.models.inductive import mean_rows, pad_lists

pytestmark = pytest.mark.usefixtures("one_thread")

PER, DIM = 30, 8          # items per cluster, embedding width
FAST = {"ks": (1, 2, 3), "steps": 3, "iterations": 120, "lr": 0.05, "batch": 64, "n_neg": 64, "query": 8}


def planted(seed: int = 0, n_known: int = 300, n_new: int = 40, per_user: int = 12):
    """``(state, train_csr, item cluster [n_items], new users' clusters [m], new users' item lists)``."""
    g = torch.Generator().manual_seed(seed)
    n_items = 2 * PER
    cluster = torch.arange(n_items) // PER
    item = torch.randn(n_items, DIM, generator=g)                              # noise everywhere ...
    item[:, 0] = (1.0 - 2.0 * cluster) + 0.3 * torch.randn(n_items, generator=g)   # ... but the cluster on dim 0
    item[:, 1] = 3.0 * torch.rand(n_items, generator=g)                        # popularity, not the cluster

    def users(n):
        c = torch.randint(2, (n,), generator=g)
        lists = [torch.nonzero(cluster == ci).reshape(-1)[torch.randperm(PER, generator=g)[:per_user]]
                 for ci in c.tolist()]
        return c, lists

    known_c, known_lists = users(n_known)
    user = torch.zeros(n_known, DIM)
    user[:, 0] = 1.0 - 2.0 * known_c
    user[:, 1] = 0.3
    rows = torch.cat([torch.full((len(x),), j) for j, x in enumerate(known_lists)])
    csr = csr_from_pairs(n_known, n_items, rows, torch.cat(known_lists))
    new_c, new_lists = users(n_new)
    return {"user": user, "item": item}, csr, cluster, new_c, new_lists


def cluster_auc(emb, item, cluster, new_c, new_lists, k):
    """Mean over new users of P(score of a held-out item of its cluster > score of an other-cluster item)."""
    scores = emb @ item.t()
    out = []
    for j, items in enumerate(new_lists):
        own, other = items[k:], torch.nonzero(cluster != new_c[j]).reshape(-1)
        out.append(float((scores[j, own][:, None] > scores[j, other][None, :]).double().mean()))
    return sum(out) / len(out)


def without_steps(adapter: MetaAdapter) -> MetaAdapter:
    """The same meta-parameters with 0 inner steps: the initialisation alone."""
    sd = {k: (v[:0] if k == "log_alpha" else v) for k, v in adapter.state_dict().items()}
    return MetaAdapter.from_checkpoint({"kwargs": dict(adapter.config(), steps=0), "state_dict": sd})


@pytest.fixture(scope="module")
def problem():
    return planted()


@pytest.fixture(scope="module")
def constant(problem):
    state, csr, *_ = problem
    return meta_train(state, csr, init="constant", seed=0, **FAST)


@pytest.fixture(scope="module")
def linear(problem):
    state, csr, *_ = problem
    return meta_train(state, csr, init="linear", seed=0, **FAST)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_constant_init_steps_find_the_cluster(problem, constant, k):
    """One shared ``u_0`` cannot tell the clusters apart (chance); the inner steps on the ``k`` items do."""
    state, _, cluster, new_c, new_lists = problem
    lists = [x[:k] for x in new_lists]
    adapted = cluster_auc(constant.adapt(lists, state), state["item"], cluster, new_c, new_lists, k)
    init = cluster_auc(without_steps(constant).adapt(lists, state), state["item"], cluster, new_c, new_lists, k)
    assert adapted > 0.95
    assert abs(init - 0.5) < 0.1
    assert adapted > init + 0.35


@pytest.mark.parametrize("k", [1, 2, 3])
def test_linear_init_beats_the_fold_in(problem, linear, k):
    """The fold-in (what the linear init starts as) is fooled by the noise dimensions; meta-training learns
    to keep the cluster's."""
    state, _, cluster, new_c, new_lists = problem
    lists = [x[:k] for x in new_lists]
    adapted = cluster_auc(linear.adapt(lists, state), state["item"], cluster, new_c, new_lists, k)
    fold = cluster_auc(mean_rows(state["item"], lists), state["item"], cluster, new_c, new_lists, k)
    assert fold < 0.8
    assert adapted > 0.95
    assert adapted > fold + 0.15


def test_meta_training_lowers_the_query_loss(constant, linear):
    for adapter in (constant, linear):
        losses = adapter.train_info["losses"]
        assert len(losses) == FAST["iterations"]
        assert sum(losses[-20:]) / 20 < sum(losses[:20]) / 20 - 0.3


def test_untrained_linear_init_is_the_scaled_fold_in(problem):
    """Before meta-training, ``W = a_0 · I`` and ``b = 0``: the init is the mean fold-in times ``a_0``."""
    state, csr, _, _, new_lists = problem
    adapter = meta_train(state, csr, iterations=0, steps=0, seed=0)
    a0 = float(adapter.weight.detach()[0, 0])
    assert a0 > 0
    assert torch.allclose(adapter.weight, a0 * torch.eye(DIM))
    assert torch.allclose(adapter.adapt(new_lists, state), a0 * mean_rows(state["item"], new_lists), atol=1e-6)


def test_zero_steps_is_the_init(problem, linear):
    state, _, _, _, new_lists = problem
    lists = [x[:2] for x in new_lists]
    fold = mean_rows(state["item"], lists)
    expected = fold @ linear.weight.detach().t() + linear.bias.detach()
    assert torch.allclose(without_steps(linear).adapt(lists, state), expected, atol=1e-6)
    assert not torch.allclose(linear.adapt(lists, state), expected, atol=1e-3)   # the steps do move u


def test_no_items_zero_row_or_learned_bias(problem, constant):
    state, _, _, _, new_lists = problem
    lists = [new_lists[0][:2], torch.zeros(0, dtype=torch.long), new_lists[1][:1]]
    rows = constant.adapt(lists, state)
    assert torch.equal(rows[1], torch.zeros(DIM))
    assert rows[0].abs().sum() > 0 and rows[2].abs().sum() > 0
    assert torch.allclose(constant.adapt(lists, state, empty="init")[1], constant.bias.detach())


def test_same_seed_same_adapter_other_seed_differs(problem):
    state, csr, _, _, new_lists = problem
    cfg = dict(FAST, iterations=15)
    a, b = meta_train(state, csr, seed=3, **cfg), meta_train(state, csr, seed=3, **cfg)
    c = meta_train(state, csr, seed=4, **cfg)
    for name, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[name]), name
    assert torch.equal(a.adapt(new_lists, state), b.adapt(new_lists, state))
    assert a.train_info["losses"] == b.train_info["losses"]
    assert not torch.equal(a.log_alpha, c.log_alpha)


def test_batched_adapt_equals_one_at_a_time(problem, linear):
    """A user's embedding depends on its own items only: the pool covers every item here, so any mixing of
    the users' supports (e.g. the union taken out of everyone's negatives) would change the rows."""
    state, _, _, _, new_lists = problem
    n_items = state["item"].shape[0]
    full = MetaAdapter.from_checkpoint({"kwargs": dict(linear.config(), n_neg=n_items),
                                        "state_dict": dict(linear.state_dict(), pool=torch.arange(n_items))})
    lists = [x[: 1 + j % 3] for j, x in enumerate(new_lists)] + [torch.zeros(0, dtype=torch.long)]
    batched = full.adapt(lists, state)
    alone = torch.cat([full.adapt([x], state) for x in lists])
    assert torch.allclose(batched, alone, atol=1e-5)
    assert torch.allclose(full.adapt(lists, state, chunk=7), batched, atol=1e-5)
    # the check can fail: taking every user's items out of every user's negatives does change the rows
    ids, mask = pad_lists(lists)
    own = negatives_mask(full.pool, n_items, ids, mask)
    union = own.all(0, keepdim=True).expand_as(own)
    mixed = full.run_inner(state["item"], ids, mask, full.pool, union).detach()
    assert not torch.allclose(mixed[:-1], batched[:-1], atol=1e-3)


def test_negatives_mask_takes_out_own_items_only():
    pool = torch.tensor([1, 4, 6, 9])
    ids, mask = pad_lists([torch.tensor([4, 9]), torch.tensor([2]), torch.tensor([6, 1, 3])])
    ok = negatives_mask(pool, 10, ids, mask)
    assert ok.tolist() == [[True, False, True, False], [True, True, True, True], [False, True, False, True]]
    assert default_pool(10, 4, 0).tolist() == sorted(default_pool(10, 4, 0).tolist())
    assert default_pool(10, 50, 0).tolist() == list(range(10))


def test_inner_grad_is_the_gradient_of_the_inner_loss():
    """The closed-form gradient (what makes the second-order meta-gradient cheap) against autograd."""
    g = torch.Generator().manual_seed(1)
    adapter = MetaAdapter(DIM, steps=1, l2=0.3, scale=1.7).double()
    m, k, n = 5, 3, 11
    u = torch.randn(m, DIM, generator=g, dtype=torch.float64, requires_grad=True)
    u0 = torch.randn(m, DIM, generator=g, dtype=torch.float64)
    pos = torch.randn(m, k, DIM, generator=g, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1], [1, 0, 0], [1, 1, 0], [0, 0, 0], [1, 1, 1]], dtype=torch.bool)
    neg = torch.randn(n, DIM, generator=g, dtype=torch.float64)
    neg_ok = torch.rand(m, n, generator=g) > 0.3
    loss, grad = adapter.inner_grad(u, u0, pos, mask, neg, neg_ok)
    (auto,) = torch.autograd.grad(loss.sum(), u)
    assert torch.allclose(grad, auto, atol=1e-10)
    assert torch.equal(grad[3], adapter.log_l2.exp() * (u[3] - u0[3]).detach())   # no positives: L2 only


def test_first_and_second_order_meta_gradients_differ(problem):
    state, csr, *_ = problem
    a = meta_train(state, csr, seed=0, first_order=False, **dict(FAST, iterations=3))
    b = meta_train(state, csr, seed=0, first_order=True, **dict(FAST, iterations=3))
    assert a.train_info["losses"][0] == b.train_info["losses"][0]          # same start, same episodes
    assert not torch.allclose(a.weight, b.weight)


def test_checkpoint_round_trip(problem, linear):
    state, _, _, _, new_lists = problem
    again = MetaAdapter.from_checkpoint({"kwargs": linear.config(), "state_dict": linear.state_dict()})
    assert torch.equal(again.adapt(new_lists, state), linear.adapt(new_lists, state))
    assert torch.equal(linear.infer(state)(new_lists), linear.adapt(new_lists, state))


def test_bad_inputs(problem):
    state, csr, *_ = problem
    with pytest.raises(ValueError, match="support size"):
        meta_train(state, csr, ks=(0,))
    with pytest.raises(ValueError, match="init"):
        MetaAdapter(DIM, init="nope")
    with pytest.raises(ValueError, match="dimensional"):
        MetaAdapter(DIM + 1).adapt([torch.tensor([0])], state)
    with pytest.raises(ValueError, match="item ids"):
        MetaAdapter(DIM).adapt([torch.tensor([10_000])], state)
