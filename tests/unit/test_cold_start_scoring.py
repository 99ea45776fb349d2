"""The cold-start scorer's known answers: popularity when nothing is known, popularity among similar users
for features, friends counted with features, the blend fading with k, and settings chosen on validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from gnnrec.cold_start import (
    ColdStartScorer,
    FeaturePopularity,
    NewEntities,
    SideInfo,
    choose_settings,
    shrink_weight,
)
from gnnrec.models import build_model

N_USERS, N_ITEMS = 6, 5
# users 0-2 (group "a") like items 0, 1; users 3-5 (group "b") like items 3, 4; item 2 is popular with all
TRAIN_U = np.array([0, 0, 0, 1, 1, 2, 2, 3, 3, 3, 4, 4, 5, 5, 1, 4])
TRAIN_I = np.array([0, 1, 2, 0, 1, 0, 2, 3, 4, 2, 3, 2, 4, 2, 2, 4])
FEATURES = pd.DataFrame({"group": ["a", "a", "a", "b", "b", "b"]}, index=pd.Index(range(N_USERS), name="user_id"))


def mf_scorer(features=FEATURES) -> ColdStartScorer:
    model = build_model("mf", n_users=N_USERS, n_items=N_ITEMS, embedding_dim=2)
    with torch.no_grad():
        model.user_embedding.weight.copy_(torch.tensor([[1.0, 0]] * 3 + [[0, 1.0]] * 3))
        model.item_embedding.weight.copy_(torch.tensor([[1.0, 0], [0.9, 0], [0.3, 0.3], [0, 0.9], [0, 1.0]]))
    state = model.serving_state(None)
    popularity = torch.bincount(torch.from_numpy(TRAIN_I), minlength=N_ITEMS).float()
    return ColdStartScorer(model, state, popularity, np.arange(N_USERS), features, TRAIN_U, TRAIN_I)


def ranking(user_rows, item_rows) -> list[int]:
    return torch.sort(user_rows @ item_rows.t(), dim=1, descending=True, stable=True).indices[0].tolist()


def test_nothing_known_ranks_by_training_popularity():
    scorer = mf_scorer(features=None)
    rows = scorer.embed([torch.zeros(0, dtype=torch.long)], shrink=1.0)
    assert ranking(*rows) == [2, 0, 4, 1, 3]                                   # counts 7, 3, 3, 2, 2 (ties by id)


def test_features_at_k0_rank_by_the_popularity_among_users_who_share_them():
    scorer = mf_scorer()
    table = FeaturePopularity(FEATURES, np.arange(N_USERS), TRAIN_U, TRAIN_I, N_ITEMS).table
    group_b = TRAIN_I[np.isin(TRAIN_U, [3, 4, 5])]
    assert torch.allclose(table[1], torch.from_numpy(np.bincount(group_b, minlength=N_ITEMS) / len(group_b)).float())
    rows = scorer.embed([torch.zeros(0, dtype=torch.long)], shrink=1.0, features=[{"group": "b"}])
    assert ranking(*rows)[:3] == [2, 4, 3]                                      # group b's items, not global
    # zero_similar=False: a user with no items gets global popularity even with features
    rows = scorer.embed([torch.zeros(0, dtype=torch.long)], shrink=1.0, features=[{"group": "b"}], zero_similar=False)
    assert ranking(*rows) == [2, 0, 4, 1, 3]


def test_friends_count_beside_features_at_k0():
    scorer = mf_scorer()
    empty = [torch.zeros(0, dtype=torch.long)]
    feats_only = scorer.embed(empty, shrink=1.0, features=[{"group": "a"}])
    with_friend = scorer.embed(empty, shrink=1.0, features=[{"group": "a"}], friends=[torch.tensor([4])])
    assert not torch.allclose(feats_only[0] @ feats_only[1].t(), with_friend[0] @ with_friend[1].t())


def test_the_blend_leans_on_similar_users_at_small_k_and_fades():
    assert shrink_weight(torch.tensor([0, 1, 3]), 1.0).tolist() == [1.0, 0.5, 0.25]
    assert shrink_weight(torch.tensor([0, 5]), 0.0).tolist() == [0.0, 0.0]
    scorer = mf_scorer()
    items = [torch.tensor([0])]                                                # a group-a item ...
    own = ranking(*scorer.embed(items, shrink=0.0, settings={"ridge": 1.0}, features=[{"group": "b"}]))
    own = [i for i in own if i != 0]                                           # (the evaluator masks item 0)
    assert own[0] == 1                                                          # ... alone: group a's other item
    leaned = ranking(*scorer.embed(items, shrink=100.0, settings={"ridge": 1.0}, features=[{"group": "b"}]))
    assert [i for i in leaned if i != 0][:2] == [2, 4]                          # ... with features b, heavily: b's


def test_settings_are_chosen_on_the_validation_users():
    scorer = mf_scorer()
    # validation users of group b who revealed a group-a item: only leaning on features finds their items
    val = NewEntities(np.array([100, 101]), [np.array([0, 3, 4]), np.array([1, 4, 3])], np.array(["val", "val"]))
    side = SideInfo(pd.concat([FEATURES, pd.DataFrame({"group": ["b", "b"]}, index=[100, 101])]), {})
    choice = choose_settings(scorer, val, side, [0, 1], N_ITEMS, chunk=8)
    assert choice.shrink > 0 and choice.zero_similar
    assert max(t["ndcg@20"] for t in choice.trials if "shrink" in t) > min(t["ndcg@20"] for t in choice.trials
                                                                             if "shrink" in t)


def test_the_fold_in_only_row_leaves_out_the_blend_and_takes_the_best_unblended_settings():
    from types import SimpleNamespace

    from gnnrec.cold_start import Choice, score_users
    from gnnrec.stages.cold_start_eval import _fold_in_only

    scorer = mf_scorer()
    # group-b users whose revealed item is a group-a one: the features' blend finds their group-b targets
    test = NewEntities(np.array([100, 101]), [np.array([0, 3, 4]), np.array([1, 4, 3])], np.array(["test", "test"]))
    side = SideInfo(pd.concat([FEATURES, pd.DataFrame({"group": ["b", "b"]}, index=[100, 101])]), {})
    inp = SimpleNamespace(test=test, side=side, ks=[0, 1], n_items=N_ITEMS, metric_ks=[5, 20], chunk=8)
    choice = Choice(shrink=3.0, settings={"ridge": 1.0}, zero_similar=True,
                    trials=[{"shrink": 0.0, "settings": {"ridge": 0.1}, "ndcg@20": 0.4},
                            {"shrink": 0.0, "settings": {"ridge": 10.0}, "ndcg@20": 0.5},
                            {"shrink": 3.0, "settings": {"ridge": 1.0}, "ndcg@20": 0.9}])
    metrics, frames = _fold_in_only("mf", scorer, inp, choice)
    own = score_users(scorer, test, side, [0, 1], N_ITEMS, [5, 20], 8, 0.0, {"ridge": 10.0}, zero_similar=False)
    blended = score_users(scorer, test, side, [0, 1], N_ITEMS, [5, 20], 8, 3.0, {"ridge": 1.0}, zero_similar=True)
    for k in (0, 1):
        assert metrics[f"k={k}"]["ndcg@20"] == round(float(own[k][1]["ndcg@20"].mean()), 6)
    assert metrics["k=0"]["ndcg@20"] < float(blended[0][1]["ndcg@20"].mean())      # popularity, not features
    assert {f["model"].iloc[0] for f in frames} == {"mf:fold-in"} and sorted(f["k"].iloc[0] for f in frames) == [0, 1]
