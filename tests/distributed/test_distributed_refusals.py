"""What a run on K ranks refuses, in one line, before any rank waits for another. A group
object that was never joined is enough: every check here comes before the first collective."""

from __future__ import annotations

import pytest
import torch
from helpers import Poisson1D

from glfpinn import GLF, RAD, Sampler, Trainer, Uniform
from glfpinn.distributed import ProcessGroup
from glfpinn.samplers.base import Resampled
from glfpinn.training import make_trainer

TWO = ProcessGroup(rank=0, world_size=2, local_rank=0, device=torch.device("cpu"))


def _trainer(sampler, n_points=16, group=TWO):
    return make_trainer(Poisson1D(), sampler, steps=1, n_points=n_points, hidden=(8,), group=group)


@pytest.mark.parametrize("sampler", [Uniform(), GLF()])
def test_points_that_do_not_split_over_the_ranks_are_refused_per_rank(sampler):
    # a sampler that resamples per rank draws a fixed quota N/K on each
    with pytest.raises(ValueError, match="n_points=15 does not split over 2 ranks"):
        _trainer(sampler, n_points=15)


def test_a_whole_set_sampler_takes_shares_of_unequal_size_but_not_fewer_points_than_ranks():
    assert _trainer(RAD(n_candidates=64), n_points=15).state.points.shape == (8, 1)
    with pytest.raises(ValueError, match="n_points=1 is fewer than the 2 ranks"):
        _trainer(RAD(n_candidates=64), n_points=1)


@pytest.mark.parametrize(
    ("sampler", "per_rank"),
    [
        (Uniform(), True),
        (GLF(), True),
        (GLF(surrogate="exact"), True),
        (RAD(), False),
        (GLF(adaptive_M=True), False),
        (GLF(alpha_scale="relative"), False),
        (GLF(surrogate="idw"), False),
        (GLF(importance_weights=True), False),
    ],
)
def test_each_sampler_says_whether_it_resamples_per_rank(sampler, per_rank):
    assert sampler.resamples_per_rank() is per_rank
    assert _trainer(sampler).strategy.per_rank is per_rank


def test_a_device_other_than_the_groups_is_refused():
    # a group object only: building it starts nothing, so no card is needed
    on_cuda = ProcessGroup(rank=0, world_size=2, local_rank=0, device=torch.device("cuda", 0))
    with pytest.raises(ValueError, match="the process group runs on cuda"):
        make_trainer(Poisson1D(), Uniform(), steps=1, n_points=16, device="cpu", group=on_cuda)


def _two_rank_state(trainer: Trainer, per_rank: bool) -> dict:
    """A state as a 2-rank run joins it (both ranks' parts alike, for the checks here)."""
    state = trainer.state_dict()
    part = {
        "n_points": int(state["points"].shape[0]),
        **{k: state[k] for k in ("sampler_state", "generator", "costs")},
    }
    points = torch.cat([state["points"], state["points"]])
    return {**state, "points": points, "ranks": [part, part], "world_size": 2, "per_rank": per_rank}


def test_a_per_rank_run_is_not_resumed_on_another_number_of_ranks():
    trainer = _trainer(GLF(), group=None)
    with pytest.raises(
        ValueError,
        match="run on 2 ranks and this run has 1: its sampler "
        "resamples per rank, from one stream per rank; resume it on 2",
    ):
        trainer.load_state_dict(_two_rank_state(trainer, per_rank=True))


def test_a_whole_set_run_moves_to_one_process_with_its_union():
    # two ranks' shares of 16 points each: the one process of the resumed run takes all 32
    state = _two_rank_state(_trainer(RAD(n_candidates=64), group=None), per_rank=False)
    trainer = _trainer(RAD(n_candidates=64), n_points=32, group=None)
    trainer.load_state_dict(state)
    assert torch.equal(trainer.state.points, state["points"])  # both ranks' points


def test_a_rank_state_of_an_earlier_format_is_refused():
    trainer = _trainer(Uniform(), group=None)
    state = {**trainer.state_dict(), "rank": 0, "world_size": 2}
    with pytest.raises(ValueError, match="holds one rank's points of a run on 2 ranks"):
        trainer.load_state_dict(state)


def test_a_config_for_several_ranks_is_refused_in_one_process(tmp_path):
    from glfpinn.config import RunConfig
    from glfpinn.runs import run

    cfg = RunConfig.from_dict({"problem": "allen-cahn", "steps": 1, "nproc": 2})
    with pytest.raises(
        ValueError,
        match="nproc=2 but this is one process; start the run with glfpinn train --nproc 2",
    ):
        run(cfg, tmp_path / "run")


def test_a_bench_cell_on_several_ranks_is_refused(tmp_path):
    from glfpinn.bench import load_bench

    path = tmp_path / "bench.yaml"
    path.write_text(
        "base: {steps: 1, nproc: 2}\n"
        "experiments:\n"
        "  e: {problems: {ac: {problem: allen-cahn}}, samplers: {u: {sampler: uniform}}}\n"
    )
    with pytest.raises(ValueError, match="nproc=2: a bench trains each run in one worker"):
        load_bench(path)


class _Rounding(Sampler):
    """A per-rank sampler that draws one point more than asked."""

    def initial_points(self, n, domain, generator, dtype):
        return domain.sample(n + 1, generator, dtype=dtype)

    def resamples_per_rank(self) -> bool:
        return True

    def resample(self, ctx, state):
        return Resampled(ctx.points, state)


def test_a_per_rank_sampler_must_draw_exactly_its_share():
    with pytest.raises(ValueError, match="drew 9 initial points for a share of 8"):
        _trainer(_Rounding())


@pytest.mark.skipif(torch.cuda.is_available(), reason="with a card the rank would go on to join")
def test_a_run_stored_on_a_numbered_card_resumes_on_every_ranks_own_card(
    tmp_path, monkeypatch, capsys
):
    """A rank takes cuda:LOCAL_RANK, so the stored cuda:0 counts as cuda: on this machine
    (no card) joining fails for the want of a card, not for the number."""
    from glfpinn.cli import main

    (tmp_path / "config.yaml").write_text("problem: allen-cahn\ndevice: cuda:0\nnproc: 2\n")
    env = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1"}
    for name, value in {**env, "MASTER_PORT": "29999"}.items():
        monkeypatch.setenv(name, value)
    assert main(["train", "--resume", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "LOCAL_RANK=0 but this machine has 0 CUDA devices" in err, err


def test_joined_weights_give_a_rank_without_weights_weight_one():
    from glfpinn.distributed.checkpoint import joined

    def part(n, weights):
        return {
            "points": torch.zeros(n, 1),
            "weights": weights,
            "last_residuals": None,
            "sampler_state": {},
            "generator": torch.Generator().get_state(),
            "costs": {},
        }

    whole = joined({}, [part(2, torch.tensor([0.5, 1.5])), part(3, None)], per_rank=True)
    assert torch.equal(whole["weights"], torch.tensor([0.5, 1.5, 1.0, 1.0, 1.0]))
    assert whole["last_residuals"] is None and whole["world_size"] == 2
    assert [r["n_points"] for r in whole["ranks"]] == [2, 3]
