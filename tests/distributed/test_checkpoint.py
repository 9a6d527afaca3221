"""One checkpoint holds every rank's state: a 2-rank run resumed on 2 ranks is bit-exact, and a
run whose sampler draws from the whole set moves between 1 and 2 ranks as the same run."""

from __future__ import annotations

import copy

import pytest
import torch
from ranks import poisson_trainer, run_ranks

from glfpinn import GLF, RAD, RARD, Stage, Trainer

N = 16
#: per rank; whole set; whole set growing by 3 (19 points at the pause: shares of 10 and 9)
SAMPLERS = {
    "glf": GLF,
    "rad": lambda: RAD(n_candidates=200),
    "rar-d": lambda: RARD(n_candidates=200, n_add=3),
}


def _trainer(name: str, group=None) -> Trainer:
    plan = [Stage("adam", 6, lr=1e-2), Stage("lbfgs", 2)]
    return poisson_trainer(SAMPLERS[name](), group, plan=plan, n_points=N, seed=3)


def _end(trainer: Trainer) -> dict:
    points, _ = trainer.training_set()
    return {
        "params": [p.detach().clone() for p in trainer.model.parameters()],
        "points": points,
        "result": trainer.result().to_dict(),
    }


def _resumed(name: str, state: dict, group=None) -> dict:
    trainer = _trainer(name, group)
    # from a copy, as from a checkpoint file: a loaded optimizer trains the given tensors
    trainer.load_state_dict(copy.deepcopy(state))
    trainer.fit()
    return _end(trainer)


def _single_process_state(name: str) -> dict:
    trainer = _trainer(name)
    trainer.fit(until=3)
    return trainer.state_dict()


def _on_rank(group) -> dict:
    out = {}
    for name in SAMPLERS:
        whole = _trainer(name, group)
        whole.fit()
        paused = _trainer(name, group)
        paused.fit(until=3)
        state = copy.deepcopy(paused.state_dict())  # as saved: not the live tensors
        out[name] = {"whole": _end(whole), "state": state, "resumed": _resumed(name, state, group)}
    # a single process's checkpoint, resumed here on 2 ranks
    for name in ("rad", "rar-d"):
        out[f"{name}-from-1"] = _resumed(name, _single_process_state(name), group)
    return out


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    return run_ranks(_on_rank, tmp_path_factory.mktemp("ranks"))


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_resume_on_the_same_ranks_is_bit_exact(ranks, name):
    for rank in ranks:
        whole, resumed = rank[name]["whole"], rank[name]["resumed"]
        for p, q in zip(resumed["params"], whole["params"], strict=True):
            assert torch.equal(p, q)
        assert torch.equal(resumed["points"], whole["points"])
        assert resumed["result"]["final_loss"] == whole["result"]["final_loss"]
        assert resumed["result"]["residual_evals"] == whole["result"]["residual_evals"]


def test_the_checkpoint_holds_every_ranks_points_and_stream(ranks):
    a, b = (rank["glf"]["state"] for rank in ranks)
    assert a["world_size"] == 2 and a["per_rank"] is True
    assert a["points"].shape == (N, 1)  # both ranks' 8 points, in rank order
    assert [r["n_points"] for r in a["ranks"]] == [8, 8]
    assert not torch.equal(a["ranks"][0]["generator"], a["ranks"][1]["generator"])
    assert torch.equal(a["points"], b["points"])  # every rank gets the same joined state


@pytest.mark.parametrize("name", ["rad", "rar-d"])
def test_a_whole_set_run_moves_from_two_ranks_to_one_process(ranks, name):
    single = _trainer(name)
    single.fit()
    moved = _resumed(name, ranks[0][name]["state"])
    for p, q in zip(moved["params"], _end(single)["params"], strict=True):
        torch.testing.assert_close(p, q, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(moved["points"], _end(single)["points"], rtol=1e-9, atol=1e-12)
    # the evaluations both ranks made before the move are counted once each
    assert moved["result"]["residual_evals"] == single.result().residual_evals


@pytest.mark.parametrize("name", ["rad", "rar-d"])
def test_a_whole_set_run_moves_from_one_process_to_two_ranks(ranks, name):
    single = _trainer(name)
    single.fit()
    for rank in ranks:
        moved = rank[f"{name}-from-1"]
        for p, q in zip(moved["params"], _end(single)["params"], strict=True):
            torch.testing.assert_close(p, q, rtol=1e-8, atol=1e-10)
        torch.testing.assert_close(moved["points"], _end(single)["points"], rtol=1e-9, atol=0)
        assert moved["result"]["residual_evals"] == single.result().residual_evals


def test_a_growing_set_is_checkpointed_in_unequal_shares(ranks):
    state = ranks[0]["rar-d"]["state"]
    assert [r["n_points"] for r in state["ranks"]] == [10, 9]
    assert state["points"].shape == (19, 1)
