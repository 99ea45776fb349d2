"""The training-free graph filters (GF-CF, BSPM): scores against dense NumPy references of the published
formulas on a tiny hand-built matrix, the ODE solvers against their closed forms, chunking, the served
path, determinism and the checkpoint."""

from __future__ import annotations

import io

import numpy as np
import pytest
import scipy.linalg
import torch

from gnnrec.config import TrainConfig
from gnnrec.evaluation import DirectScores, evaluate_ranking, top_k_items
from gnnrec.graph import csr_from_pairs
from gnnrec.models import build_model, checkpoint, model_from_checkpoint
from gnnrec.models.graph_filters import integrate, truncated_svd
from gnnrec.training import InteractionData, train_model

# 5 users × 7 items; item 6 has no training interaction (its degree is 0)
R = np.array([[1, 1, 0, 0, 1, 0, 0],
              [0, 1, 1, 0, 0, 0, 0],
              [1, 0, 1, 1, 0, 1, 0],
              [0, 0, 0, 1, 1, 0, 0],
              [1, 1, 1, 0, 0, 1, 0]], dtype=np.float64)
N_USERS, N_ITEMS = R.shape
USERS, ITEMS = np.nonzero(R)
GRAPH = {"n_users": N_USERS, "n_items": N_ITEMS, "train_user": USERS, "train_item": ITEMS}


pytestmark = pytest.mark.usefixtures("one_thread")     # tests/conftest.py


def data(val_user=(), val_item=()) -> InteractionData:
    return InteractionData(N_USERS, N_ITEMS, USERS, ITEMS, list(val_user), list(val_item))


def reference_filters(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense ``(P, P_idl)``: ``R̃ᵀR̃`` and ``D^-1/2 V_k V_kᵀ D^1/2`` (zero-degree items: zeros)."""
    du, di = R.sum(1), R.sum(0)
    inv_i = np.where(di > 0, 1 / np.sqrt(np.maximum(di, 1)), 0.0)
    rt = R / np.sqrt(du)[:, None] * inv_i[None]
    _, _, vt = np.linalg.svd(rt)
    v = vt[:k].T
    return rt.T @ rt, np.diag(inv_i) @ v @ v.T @ np.diag(np.sqrt(di))


def fitted(name: str, **kwargs):
    torch.manual_seed(0)
    return build_model(name, n_users=N_USERS, n_items=N_ITEMS, **kwargs).fit(data())


def scores(model) -> np.ndarray:
    return model.score_users(torch.arange(N_USERS)).double().numpy()


def test_gfcf_scores_equal_the_dense_formula():
    p, p_idl = reference_filters(2)
    np.testing.assert_allclose(scores(fitted("gfcf", factor_dim=2, alpha=0.3)), R @ p + 0.3 * R @ p_idl, atol=1e-5)
    np.testing.assert_allclose(scores(fitted("gfcf", factor_dim=2, alpha=0.0)), R @ p, atol=1e-5)
    assert np.all(scores(fitted("gfcf", factor_dim=2))[:, 6] == 0)          # an item nobody touched


def test_truncated_svd_matches_numpy_below_and_at_full_rank():
    rt = R / np.sqrt(R.sum(1))[:, None] / np.sqrt(np.maximum(R.sum(0), 1))[None]
    _, s_ref, vt = np.linalg.svd(rt)
    import scipy.sparse as sp
    for k in (2, 5):                                   # svds below min(shape), the Gram matrix at it
        v, s = truncated_svd(sp.csr_matrix(rt.astype(np.float32)), k)
        np.testing.assert_allclose(s, s_ref[:k], atol=1e-5)
        np.testing.assert_allclose(v @ v.T, vt[:k].T @ vt[:k], atol=1e-5)
    low_rank = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1], [0, 0, 1]], dtype=np.float32)   # rank 2 of 3
    v, s = truncated_svd(sp.csr_matrix(low_rank), 3)
    assert s[2] == 0 and np.all(v[:, 2] == 0) and s[1] > 0


def test_chunked_scoring_equals_unchunked_and_the_evaluator_reads_direct_scores():
    model = fitted("gfcf", factor_dim=2)
    full = model.score_users(torch.arange(N_USERS))
    for chunk in ([3], [0, 4], [1, 2, 3]):
        torch.testing.assert_close(model.score_users(torch.tensor(chunk)), full[chunk], rtol=0, atol=1e-6)
    direct, none = model.embed(None)
    assert isinstance(direct, DirectScores) and none is None
    train = csr_from_pairs(N_USERS, N_ITEMS, USERS[::2], ITEMS[::2])       # mask half, rank the other half
    test = csr_from_pairs(N_USERS, N_ITEMS, USERS[1::2], ITEMS[1::2])
    as_embeddings = evaluate_ranking(full, torch.eye(N_ITEMS), train, test, [1, 3], chunk_size=100)
    for chunk in (1, 2, 100):
        assert evaluate_ranking(direct, None, train, test, [1, 3], chunk_size=chunk) == \
            pytest.approx(as_embeddings, abs=1e-12)
    u, ids, _ = top_k_items(direct, None, train, 2, chunk_size=2)
    u2, ids2, _ = top_k_items(full, torch.eye(N_ITEMS), train, 2)
    assert torch.equal(u, u2) and torch.equal(ids, ids2)


def test_the_evaluate_stage_one_pass_equals_the_three_separate_rankings():
    from gnnrec.evaluation import csr_union, ranking_metrics_per_user
    from gnnrec.stages.evaluate import _rank_once

    direct, _ = fitted("bspm", factor_dim=2).embed(None)
    train, val, test = (csr_from_pairs(N_USERS, N_ITEMS, USERS[j::3], ITEMS[j::3]) for j in range(3))
    seen = csr_union(train, val, N_ITEMS)
    rec_users = torch.tensor([0, 2, 3])
    test_users, test_values, val_m, (u, ids, vals) = _rank_once(direct, seen, train, test, val, rec_users, [1, 3], 2)
    want_users, want_values = ranking_metrics_per_user(direct, None, seen, test, [1, 3], chunk_size=100)
    assert torch.equal(test_users, want_users)
    for key, values in want_values.items():
        torch.testing.assert_close(test_values[key], values)
    assert val_m == pytest.approx(evaluate_ranking(direct, None, train, val, [1, 3], chunk_size=3))
    want_u, want_ids, want_vals = top_k_items(direct, None, seen, 3, users=rec_users)
    assert torch.equal(u, want_u) and torch.equal(ids, want_ids) and torch.equal(vals, want_vals)


def test_bspm_euler_one_step_without_sharpening_is_the_closed_form():
    p, p_idl = reference_filters(2)
    model = fitted("bspm", factor_dim=2, idl_beta=0.25, idl_time=0.4, blur_time=0.7, sharpening=False)
    blurred = R + 0.7 * (R @ p - R)
    low = R + 0.4 * (R @ p_idl - R)
    np.testing.assert_allclose(scores(model), blurred + 0.25 * low, atol=1e-5)
    gfcf = fitted("gfcf", factor_dim=2, alpha=0.25)            # euler, one step of 1: GF-CF with alpha = beta
    bspm = fitted("bspm", factor_dim=2, idl_beta=0.25, sharpening=False)
    np.testing.assert_allclose(scores(bspm), scores(gfcf), atol=1e-5)


def test_bspm_defaults_are_the_authors_rk4_sharpening_in_closed_form():
    p, p_idl = reference_filters(3)
    start = R @ p + 0.2 * R @ p_idl                            # one Euler step of length 1 of each blur
    hp = -2.5 * p                                              # one RK4 step of -xP: its Taylor polynomial
    taylor = np.eye(N_ITEMS) + hp + hp @ hp / 2 + hp @ hp @ hp / 6 + hp @ hp @ hp @ hp / 24
    np.testing.assert_allclose(scores(fitted("bspm", factor_dim=3)), start @ taylor, atol=1e-4)
    not_final = fitted("bspm", factor_dim=3, final_sharpening=False)
    np.testing.assert_allclose(scores(not_final), R @ p @ taylor + 0.2 * R @ p_idl, atol=1e-4)


def test_integrate_rk4_and_euler_converge_to_the_exponential():
    a = torch.tensor([[-1.0, 0.5, 0.0], [0.2, -0.8, 0.3], [0.0, 0.4, -1.2]], dtype=torch.float64)
    z0 = torch.tensor([[1.0, -2.0, 0.5]], dtype=torch.float64)
    exact = z0 @ torch.from_numpy(scipy.linalg.expm(1.5 * a.numpy()))

    def error(steps, solver):
        return float((integrate(lambda z: z @ a, z0, 1.5, steps, solver) - exact).abs().max())

    assert error(1, "euler") > error(10, "euler") > error(1000, "euler") and error(1000, "euler") < 1e-3
    assert 8 < error(100, "euler") / error(1000, "euler") < 12          # first order: 10x the steps, 1/10 the error
    assert error(1, "rk4") > error(4, "rk4") > error(16, "rk4") and error(16, "rk4") < 1e-5
    assert 150 < error(4, "rk4") / error(16, "rk4") < 400              # fourth order: about 4^4 = 256
    assert error(16, "rk4") < error(1000, "euler")
    ha = 1.5 * a                                              # one RK4 step is the degree-4 Taylor polynomial
    taylor = torch.eye(3, dtype=torch.float64) + ha + ha @ ha / 2 + ha @ ha @ ha / 6 + ha @ ha @ ha @ ha / 24
    torch.testing.assert_close(integrate(lambda z: z @ a, z0, 1.5, 1, "rk4"), z0 @ taylor)


def test_bspm_rk4_and_many_euler_steps_agree():
    rk4 = scores(fitted("bspm", factor_dim=2, blur_solver="rk4", blur_steps=4, sharpen_steps=4))
    euler = scores(fitted("bspm", factor_dim=2, blur_solver="euler", blur_steps=400, sharpen_solver="euler",
                          sharpen_steps=400))
    coarse = scores(fitted("bspm", factor_dim=2, blur_solver="euler", blur_steps=4, sharpen_solver="euler",
                           sharpen_steps=4))
    assert np.abs(rk4 - euler).max() < 5e-3 < np.abs(rk4 - coarse).max()


def test_fit_is_deterministic():
    for name in ("gfcf", "bspm"):
        a, b = fitted(name, factor_dim=2), fitted(name, factor_dim=2)
        assert torch.equal(a.factors, b.factors) and torch.equal(a.sigma, b.sigma)
        assert torch.equal(a.score_users(torch.arange(N_USERS)), b.score_users(torch.arange(N_USERS)))


@pytest.mark.parametrize("name", ["gfcf", "bspm"])
def test_checkpoint_round_trip_gives_the_same_scores(name):
    model = fitted(name, factor_dim=2)
    kwargs = {"n_users": N_USERS, "n_items": N_ITEMS, "factor_dim": 2}
    buffer = io.BytesIO()
    torch.save(checkpoint(name, kwargs, model), buffer)
    buffer.seek(0)
    ckpt = torch.load(buffer, weights_only=True)
    assert set(ckpt["state_dict"]) == {"factors", "sigma"}                 # the fitted state only
    loaded = model_from_checkpoint(ckpt, GRAPH)
    assert torch.equal(loaded.score_users(torch.arange(N_USERS)), model.score_users(torch.arange(N_USERS)))
    with pytest.raises(RuntimeError, match="prepare"):
        model_from_checkpoint(ckpt).score_users(torch.arange(2))


@pytest.mark.parametrize("name, kwargs", [("gfcf", {}), ("bspm", {}), ("bspm", {"final_sharpening": False})])
def test_served_path_equals_exact_scores_at_full_rank(name, kwargs):
    """At full rank the spectral form is exact: a new user with a known user's items gets that user's scores
    on every item it has not touched (the revealed items are masked, and only they differ)."""
    model = fitted(name, factor_dim=8, **kwargs)                # >= min(5, 7): full rank
    state = model.serving_state(None)
    rows = model.infer_users([torch.from_numpy(np.nonzero(R[u])[0]) for u in range(N_USERS)], state=state)
    served = (rows @ state["item"].t()).double().numpy()
    untouched = R == 0
    np.testing.assert_allclose(served[untouched], scores(model)[untouched], atol=1e-4)
    torch.testing.assert_close(state["user"], rows, atol=1e-5, rtol=0)       # known users: the same rows
    assert torch.all(model.infer_users([torch.zeros(0, dtype=torch.long)], state=state) == 0)


def test_train_loop_fits_once_and_scores_validation():
    val_u, val_i = [0, 1, 3], [2, 3, 0]
    model = build_model("gfcf", n_users=N_USERS, n_items=N_ITEMS, factor_dim=2)
    model.prepare(GRAPH)
    result = train_model(model, data(val_u, val_i), TrainConfig(), metric="ndcg@3", chunk_size=2)
    assert result.stopped == "no_training" and result.epochs_run == 0
    assert 0 < result.fit_seconds <= result.train_seconds           # the fit alone; training also validated
    expected = evaluate_ranking(torch.from_numpy(scores(model)).float(), torch.eye(N_ITEMS),
                                csr_from_pairs(N_USERS, N_ITEMS, USERS, ITEMS),
                                csr_from_pairs(N_USERS, N_ITEMS, val_u, val_i), [3])["ndcg@3"]
    assert result.best_score == pytest.approx(expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", ["gfcf", "bspm"])
def test_cuda_scores_match_cpu(name):
    cpu = fitted(name, factor_dim=2)
    gpu = build_model(name, n_users=N_USERS, n_items=N_ITEMS, factor_dim=2).to("cuda").fit(data())
    torch.testing.assert_close(gpu.score_users(torch.arange(N_USERS)).cpu(), cpu.score_users(torch.arange(N_USERS)),
                               atol=1e-5, rtol=1e-5)
    state = gpu.serving_state(None)
    assert state["item"].device.type == "cuda"
