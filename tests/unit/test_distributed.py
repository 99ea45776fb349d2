"""Data-parallel training (gnnrec.data_parallel, gnnrec.distributed): two gloo ranks on CPU, one thread each,
on the tiny planted graph of test_training. One spawned pair of processes runs every loop scenario (a
gradient step, two identical trainings, a killed-and-resumed one, the sub-graph methods) and each test
checks one behaviour on what the ranks saved; the last test goes through the train stage and torchrun."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gnnrec.config import TrainConfig, params_from_dict
from gnnrec.data_parallel import AllReduceOptimizer, DataParallel, RankShare
from gnnrec.distributed import free_port
from gnnrec.errors import ParamsError
from gnnrec.io import load_torch, save_torch
from gnnrec.models import LightGCN, model_from_checkpoint
from gnnrec.training import make_optimizer, prepare_adjacency, train_model
from tests.conftest import REPO
from tests.unit.test_training import make_project, planted

pytestmark = pytest.mark.usefixtures("one_thread")
WORLD = 2
#: 2 ranks vs 1 on the planted graph: best validation NDCG@20 within this (absolute). Two ranks take half as
#: many steps per epoch with twice the edges per step (the per-rank batch is train.batch_size), so the curves
#: differ; early stopping on validation lets both reach the plateau (observed gap about 0.01-0.02).
QUALITY_TOLERANCE = 0.05
SUBGRAPH = {"cluster": {"method": "cluster", "num_parts": 6, "clusters_per_batch": 2},
            "saint": {"method": "saint", "roots": 6, "walk_length": 2, "num_steps": 6},
            "layerwise": {"method": "layerwise", "layer_sizes": [16, 24]}}


class Interrupt(Exception):
    pass


def train_cfg(**kw) -> TrainConfig:
    base = dict(epochs=30, batch_size=64, lr=0.05, l2=1e-4, patience=5)
    base.update(kw)
    return TrainConfig(**base)


def lightgcn(data) -> LightGCN:
    torch.manual_seed(5)
    return LightGCN(data.n_users, data.n_items, embedding_dim=8, num_layers=2)


# ------------------------------------------------------------------------------------ the ranks
def _train(parallel, data, cfg, path=None, stop_after=None):
    model = lightgcn(data)

    def log(row):
        if stop_after is not None and row["epoch"] == stop_after:
            raise Interrupt                        # like a kill: this epoch's state is not saved yet

    result = train_model(model, data, cfg, seed=7, log=log, checkpoint_path=path, parallel=parallel)
    return {"history": [(r["epoch"], r["loss"], r["val_score"]) for r in result.history],
            "best": (result.best_epoch, result.best_score, result.stopped), "resumed_from": result.resumed_from,
            "state": {k: t.detach().clone() for k, t in model.state_dict().items()}}


def _one_step(parallel, data):
    """One BPR step on this rank's own batch: the local gradient, then the weights after the all-reduced step."""
    from gnnrec.training import batch_loss

    model = lightgcn(data)
    optimizer = AllReduceOptimizer(make_optimizer(model, 0.05), parallel)
    g = torch.Generator().manual_seed(100 + parallel.rank)
    idx = torch.randint(len(data.train_user), (32,), generator=g)
    u, i = data.train_user[idx], data.train_item[idx]
    j = torch.randint(data.n_items, (32,), generator=g)
    loss = batch_loss(model, prepare_adjacency(data.adjacency()), u, i, j, train_cfg())
    loss.backward()
    grad = model.embedding.weight.grad.detach().clone()
    optimizer.step()
    return {"grad": grad, "weight": model.embedding.weight.detach().clone()}


def _worker(rank: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    logging.getLogger("gnnrec").setLevel(logging.WARNING)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        parallel = DataParallel(rank, WORLD, seed=7)
        data, _ = planted()
        res = {"step": _one_step(parallel, data), "a": _train(parallel, data, train_cfg()),
               "b": _train(parallel, data, train_cfg())}
        config, path = train_cfg(epochs=8, patience=100), Path(out) / "resume.pt"
        res["whole"] = _train(parallel, data, config)
        try:
            _train(parallel, data, config, path, stop_after=4)
        except Interrupt:
            pass
        res["saved_epoch"] = load_torch(path)["epoch"] if rank == 0 else None
        res["resumed"] = _train(parallel, data, config, path)
        for method, sub in SUBGRAPH.items():
            res[method] = _train(parallel, data, train_cfg(epochs=6, patience=100, subgraph=sub))
        save_torch(Path(out) / f"rank{rank}.pt", res)
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """What each of the two ranks saved (one spawned pair for every scenario)."""
    out = tmp_path_factory.mktemp("ranks")
    mp.spawn(_worker, args=(free_port(), str(out)), nprocs=WORLD, join=True)
    return [load_torch(out / f"rank{r}.pt") for r in range(WORLD)]


def _equal_states(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------------------------ the loop
@pytest.mark.slow                           # two processes: 6-27 s for the pair on 2 busy cores
def test_gradient_all_reduce_makes_the_ranks_weights_identical_after_a_step(ranks):
    step0, step1 = ranks[0]["step"], ranks[1]["step"]
    assert not torch.equal(step0["grad"], step1["grad"])          # each rank had its own batch
    assert torch.equal(step0["weight"], step1["weight"])
    data, _ = planted()                                           # = one process stepping on the mean gradient
    model = lightgcn(data)
    optimizer = make_optimizer(model, 0.05)
    model.embedding.weight.grad = (step0["grad"] + step1["grad"]) / WORLD
    optimizer.step()
    torch.testing.assert_close(step0["weight"], model.embedding.weight.detach(), rtol=0, atol=1e-7)


@pytest.mark.slow
def test_ranks_end_with_identical_weights_for_every_method(ranks):
    for scenario in ("a", "whole", "resumed", *SUBGRAPH):
        assert _equal_states(ranks[0][scenario]["state"], ranks[1][scenario]["state"]), scenario
        assert ranks[0][scenario]["history"] == ranks[1][scenario]["history"], scenario   # one decision


@pytest.mark.slow
def test_same_seed_and_world_size_give_identical_metrics_and_weights(ranks):
    a, b = ranks[0]["a"], ranks[0]["b"]
    assert a["history"] == b["history"] and a["best"] == b["best"]
    assert _equal_states(a["state"], b["state"])


@pytest.mark.slow
def test_two_ranks_reach_the_quality_of_one_within_the_tolerance(ranks):
    data, _ = planted()
    model = lightgcn(data)
    one = train_model(model, data, train_cfg(), seed=7)
    two = ranks[0]["a"]["best"][1]
    assert one.best_score > 0.3 and two > 0.3                     # random ranking: about 0.1
    print(f"best validation ndcg@20: 1 rank {one.best_score:.4f}, 2 ranks {two:.4f}")
    assert abs(two - one.best_score) <= QUALITY_TOLERANCE, (two, one.best_score)


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_result(ranks):
    assert ranks[0]["saved_epoch"] == 3                           # rank 0 saved every epoch before the kill
    whole, resumed = ranks[0]["whole"], ranks[0]["resumed"]
    assert resumed["resumed_from"] == 3 and ranks[1]["resumed"]["resumed_from"] == 3   # rank 0's state, broadcast
    assert resumed["history"] == whole["history"] and resumed["best"] == whole["best"]
    assert _equal_states(resumed["state"], whole["state"])


@pytest.mark.slow
def test_sub_graph_methods_train_on_two_ranks(ranks):
    for method in SUBGRAPH:
        losses = [loss for _, loss, _ in ranks[0][method]["history"]]
        assert len(losses) == 6 and losses[-1] < losses[0], method


# ------------------------------------------------------------------------------------ the shares
def test_each_rank_takes_a_disjoint_share_of_the_epochs_batches():
    shares = [DataParallel(r, 2).steps(5) for r in range(2)]
    assert shares == [[0, 2, 4], [1, 3, 0]]                       # equal counts: rank 1 repeats batch 0
    assert [DataParallel(r, 3).steps(6) for r in range(3)] == [[0, 3], [1, 4], [2, 5]]


def test_cluster_ranks_take_disjoint_part_groups_of_the_same_epoch_order():
    class Groups:                                                 # a sampler of 5 part groups, seeded order
        def subgraphs(self, generator):
            yield from (torch.tensor([int(k)]) for k in torch.randperm(5, generator=generator))

        def steps_per_epoch(self):
            return 5

    seen = []
    for rank in range(2):
        parallel = DataParallel(rank, 2, seed=3)
        parallel.start_epoch(1)
        share = RankShare(Groups(), parallel, "cluster")
        seen.append([int(nodes) for nodes in share.subgraphs(None)])
        assert share.steps_per_epoch() == 3
    assert len(seen[0]) == len(seen[1]) == 3
    assert set(seen[0]) | set(seen[1]) == set(range(5)) and len(set(seen[0][:2]) & set(seen[1][:2])) == 0


# ------------------------------------------------------------------------------------ params, stage
def test_distributed_setting_defaults_to_one_process_and_refuses_unknown_keys():
    assert params_from_dict({}).train.distributed.nproc_per_node == 1
    assert params_from_dict({"train": {"distributed": {"nproc_per_node": 2}}}).train.distributed.nproc_per_node == 2
    with pytest.raises(ParamsError, match="train.distributed.nodes"):
        params_from_dict({"train": {"distributed": {"nodes": 2}}})
    with pytest.raises(ParamsError, match="train.distributed.nproc_per_node"):
        params_from_dict({"train": {"distributed": {"nproc_per_node": 0}}})


@pytest.mark.slow
def test_the_train_stage_with_two_processes_writes_outputs_that_load_and_score(tmp_path, monkeypatch):
    from gnnrec.stages import train as train_stage

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    data, test = planted()
    params = params_from_dict({"models": ["lightgcn"], "seed": 7,
                               "train": {"epochs": 12, "batch_size": 64, "lr": 0.05, "patience": 100,
                                         "num_threads": 1, "distributed": {"nproc_per_node": 2}},
                               "lightgcn": {"embedding_dim": 8, "num_layers": 2}})
    paths = make_project(tmp_path, data, test)
    summary = train_stage.run(params, paths, "lightgcn")
    assert summary["model"] == "lightgcn" and summary["epochs_run"] == 12 and summary["best_val"] > 0.3
    written = json.loads(paths.train_summary("lightgcn").read_text())
    assert written["hyperparameters"]["world_size"] == 2 and written["best_val"] == summary["best_val"]
    assert len(paths.train_history("lightgcn").read_text().splitlines()) == 1 + 12
    assert not list((tmp_path / "artifacts" / "checkpoints").glob("*"))     # the resume state is gone
    model = model_from_checkpoint(load_torch(paths.model("lightgcn")))        # loads like any other model file
    users, items = model.embed(prepare_adjacency(data.adjacency()))
    scores = users @ items.T
    assert scores.shape == (data.n_users, data.n_items) and torch.isfinite(scores).all()


def _ended(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in state                                   # exited, not reaped (its parent is gone)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_a_rank_stops_when_its_launcher_is_killed():
    """torchrun starts its ranks in sessions of their own: a SIGKILL of torchrun must not leave them training
    (and writing), even when their stderr is a pipe to the dead launcher."""
    rank = ("import time; from gnnrec.distributed import exit_with_launcher; exit_with_launcher(every=0.05); "
            "time.sleep(60)")
    launcher = ("import subprocess, sys, time; "
                f"p = subprocess.Popen([sys.executable, '-c', {rank!r}], stderr=subprocess.PIPE, "
                "start_new_session=True); print(p.pid, flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", launcher], stdout=subprocess.PIPE, text=True, cwd=REPO)
    child = int(proc.stdout.readline())
    time.sleep(1.0)                                                # the rank is up and watching
    assert not _ended(child)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 30
    while not _ended(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _ended(child)
