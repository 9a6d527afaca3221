"""What a run on K ranks refuses, in one line, before any rank waits for another. A group
object that was never joined is enough: every check here comes before the first collective."""

from __future__ import annotations

import pytest
import torch
from helpers import Poisson1D

from glfpinn import GLF, RAD, Trainer, Uniform
from glfpinn.distributed import ProcessGroup

TWO = ProcessGroup(rank=0, world_size=2, local_rank=0, device=torch.device("cpu"))


def _trainer(sampler, n_points=16):
    return Trainer(Poisson1D(), sampler, steps=1, n_points=n_points, hidden=(8,), group=TWO)


def test_points_that_do_not_split_over_the_ranks_are_refused():
    with pytest.raises(ValueError, match="n_points=15 does not split over 2 ranks"):
        _trainer(Uniform(), n_points=15)


@pytest.mark.parametrize(
    ("sampler", "named"),
    [
        (RAD(), "it has no distributed form yet"),
        (GLF(adaptive_M=True), "adaptive_M=True"),
        (GLF(alpha_scale="relative", surrogate="idw"), "alpha_scale='relative', surrogate='idw'"),
    ],
)
def test_samplers_without_a_distributed_form_are_refused(sampler, named):
    with pytest.raises(ValueError, match="cannot train on 2 ranks") as err:
        _trainer(sampler)
    assert named in str(err.value) and "use uniform, uniform-resample or glf" in str(err.value)


def test_a_device_other_than_the_groups_is_refused():
    # a group object only: building it starts nothing, so no card is needed
    on_cuda = ProcessGroup(rank=0, world_size=2, local_rank=0, device=torch.device("cuda", 0))
    with pytest.raises(ValueError, match="the process group runs on cuda"):
        Trainer(Poisson1D(), Uniform(), steps=1, n_points=16, device="cpu", group=on_cuda)


def test_a_state_from_a_run_on_several_ranks_is_not_loaded_into_one_process():
    trainer = Trainer(Poisson1D(), Uniform(), steps=1, n_points=16, hidden=(8,))
    state = {**trainer.state_dict(), "rank": 0, "world_size": 2}
    with pytest.raises(ValueError, match="run on 2 ranks into a run on 1"):
        trainer.load_state_dict(state)
